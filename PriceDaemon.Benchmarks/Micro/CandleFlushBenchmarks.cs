using BenchmarkDotNet.Attributes;
using LiteDB;
using PriceDaemon.Candles;

namespace PriceDaemon.Benchmarks.Micro;

/// <summary>A real candle file and a file of the first layout beside it, in a temp folder of their own.</summary>
public abstract class CandleFilesBenchmark
{
    // Monday 2026-11-30 09:15 IST, in Unix microseconds.
    private protected static readonly long SessionUs = new DateTimeOffset(2026, 11, 30, 9, 15, 0, TimeSpan.FromHours(5.5)).ToUnixTimeMilliseconds() * 1000;

    private string _directory = "";

    private protected CandleStore Store { get; private set; } = null!;

    private protected LiteDatabase FirstLayout { get; private set; } = null!;

    private protected void OpenFiles()
    {
        _directory = Directory.CreateTempSubdirectory("pricedaemon-bench-").FullName;
        Store = CandleStore.Open(Path.Combine(_directory, "candles.db"));
        FirstLayout = new LiteDatabase(new ConnectionString { Filename = Path.Combine(_directory, "first-layout.db"), Connection = ConnectionType.Direct });
        LegacyBars.Create(FirstLayout);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Store.Dispose();
        FirstLayout.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}

/// <summary>
/// The candle flush at a minute's end: every instrument closes a 1-minute bar and the bars are written to a real LiteDB
/// file in one transaction, a minute later at each call, so a block fills over 16 calls and the next one starts. Runs
/// once a minute off the tick path, so it is measured per flush; what it allocates is what puts a collection into the
/// window around a minute's end. The baseline writes the same bars as the first layout did: one document per bar.
/// </summary>
[MemoryDiagnoser]
public class CandleFlushBenchmarks : CandleFilesBenchmark
{
    private string[] _keys = [];
    private readonly List<(string Key, int Interval, Bar Bar)> _closed = [];
    private long _minute;

    [Params(500, 2_000)]
    public int Instruments { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        OpenFiles();
        _keys = [.. Universe.Create(Instruments).All.Select(static i => i.Key)];
        _closed.AddRange(_keys.Select(static k => (k, 0, default(Bar))));
    }

    [Benchmark]
    public void Flush_ClosedMinute()
    {
        Store.Write(NextMinute(), []);
    }

    /// <summary>The same bars as the first layout wrote them: one upserted document per bar, indexed on <c>_id</c> and <c>t</c>.</summary>
    [Benchmark(Baseline = true)]
    public void Flush_ClosedMinute_DocumentPerBar()
    {
        LegacyBars.Write(FirstLayout, NextMinute());
    }

    /// <summary>Every instrument's bar of the next minute, in the list kept from call to call.</summary>
    private List<(string Key, int Interval, Bar Bar)> NextMinute()
    {
        var startUs = SessionUs + (_minute++ * CandleIntervals.MinuteUs);
        for (var i = 0; i < _keys.Length; i++)
        {
            var price = 100 + (i & 7);
            _closed[i] = (_keys[i], 0, new Bar { StartUs = startUs, EndUs = startUs + CandleIntervals.MinuteUs, Open = price, High = price + 1, Low = price - 1, Close = price, Volume = 1_000 + i });
        }

        return _closed;
    }
}

/// <summary>
/// A history read of one instrument's newest 300 1-minute bars (a chart's subscribe) from 500 instruments' 320 minutes:
/// a block holds its chunk's 64 instruments, so the read takes 20 blocks where the first layout took 300 documents.
/// </summary>
[MemoryDiagnoser]
public class CandleHistoryReadBenchmarks : CandleFilesBenchmark
{
    private const int Instruments = 500;
    private const int Minutes = 320;

    private string _key = "";

    [GlobalSetup]
    public void Setup()
    {
        OpenFiles();
        var keys = Universe.Create(Instruments).All.Select(static i => i.Key).ToArray();
        _key = keys[77];
        for (var minute = 0; minute < Minutes; minute++)
        {
            var startUs = SessionUs + (minute * CandleIntervals.MinuteUs);
            List<(string Key, int Interval, Bar Bar)> closed = [.. keys.Select((k, i) => (k, 0, new Bar { StartUs = startUs, Open = 100, High = 101, Low = 99, Close = 100 + (i & 7), Volume = 1_000 + i }))];
            Store.Write(closed, []);
            LegacyBars.Write(FirstLayout, closed);
        }
    }

    [Benchmark]
    public int Read_300() => Store.Read(_key, 0, long.MinValue, long.MaxValue, 300).Count;

    /// <summary>The same read as the first layout's <c>Read</c> made it: one document per bar, by the primary index.</summary>
    [Benchmark(Baseline = true)]
    public int Read_300_DocumentPerBar()
    {
        var bars = 0;
        foreach (var doc in FirstLayout.GetCollection(LegacyBars.Collection(0)).Query()
            .Where(Query.Between("_id", LegacyBars.Id(_key, long.MinValue), LegacyBars.Id(_key, long.MaxValue))).OrderByDescending("_id").Limit(300).ToEnumerable())
        {
            bars += LegacyBars.Read(doc).Bar.Volume > 0 ? 1 : 0;
        }

        return bars;
    }
}
