using System.Threading.Channels;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Feeds;
using PriceDaemon.Feeds.Replay;
using PriceDaemon.Instruments;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Feeds;

/// <summary>Replaying tick files, and recording a feed into one.</summary>
[TestFixture]
public sealed class ReplayFeedTests
{
    private const string A = "NSE_EQ|INE002A01018";
    private const string B = "NSE_EQ|INE009A01021";

    private TestMeterFactory _meters = null!;
    private FeedMetrics _metrics = null!;
    private InstrumentRegistry _instruments = null!;
    private string _folder = null!;

    [SetUp]
    public void SetUp()
    {
        _meters = new TestMeterFactory();
        _metrics = new FeedMetrics(_meters);
        _instruments = new InstrumentRegistry([(A, "RELIANCE", "Reliance", 1450.0), (B, "INFY", "Infosys", 1536.0)]);
        _folder = Directory.CreateTempSubdirectory("pricedaemon-replay-").FullName;
    }

    [TearDown]
    public void TearDown()
    {
        _meters.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public async Task ReplayFeed_PlaysTicksInFileOrder_AsFastAsPossibleAtSpeedZero()
    {
        var path = Write("day.csv",
            TickFile.CsvHeader,
            "# a comment",
            $"{B},2026-01-19T03:45:00.000001Z,1540.5,100",
            $"{A},2026-01-19T03:45:10Z,1451,200",
            "NSE_EQ|NOTOURS,2026-01-19T03:45:11Z,10,1",
            $"{A},not a time,1452,300",
            $"{A},1768794320000,1453.25,400");
        var ticks = Channel.CreateUnbounded<Tick>();

        await Feed(path, speed: 0, TimeProvider.System).RunAsync(ticks.Writer, CancellationToken.None).WaitAsync(TestClient.Timeout);

        var played = ReadAll(ticks.Reader);
        Assert.That(played.Select(t => (t.InstrumentId, t.LastPrice, t.Volume)), Is.EqualTo(new[] { (1, 1540.5, 100L), (0, 1451.0, 200L), (0, 1453.25, 400L) }));
        Assert.That(played[0].ExchangeTimeUs, Is.EqualTo(DateTimeOffset.Parse("2026-01-19T03:45:00Z").ToUnixTimeMilliseconds() * 1000 + 1));
        Assert.That(played[2].ExchangeTimeUs, Is.EqualTo(1_768_794_320_000_000), "Unix milliseconds are read too");
        Assert.That(played.Select(t => t.Source).Distinct(), Is.EqualTo(new[] { PriceSource.Replay }));
        Assert.That(_metrics.ReplaySkippedLines, Is.EqualTo(2));
    }

    [Test]
    public async Task ReplayFeed_KeepsTheRecordedGaps_DividedBySpeed()
    {
        var path = Write("day.jsonl",
            """{"instrument_key":"NSE_EQ|INE002A01018","timestamp":"2026-01-19T03:45:00Z","last_price":1450,"volume":1}""",
            """{"instrument_key":"NSE_EQ|INE009A01021","timestamp":"2026-01-19T03:45:02Z","last_price":1536,"volume":2}""",
            """{"instrument_key":"NSE_EQ|INE002A01018","timestamp":"2026-01-19T03:45:06Z","last_price":1451,"volume":3}""");
        var time = new FakeTimeProvider();
        var start = time.GetTimestamp();
        var ticks = Channel.CreateUnbounded<Tick>();
        using var stop = new CancellationTokenSource();
        var run = Feed(path, speed: 2, time).RunAsync(ticks.Writer, stop.Token);

        // Fake time moves in 100 ms steps; each tick must become readable at its recorded offset / 2, not before.
        var arrivals = new List<TimeSpan>();
        while (arrivals.Count < 3)
        {
            using var wait = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
            try
            {
                await ticks.Reader.WaitToReadAsync(wait.Token);
                while (ticks.Reader.TryRead(out _))
                {
                    arrivals.Add(time.GetElapsedTime(start));
                }
            }
            catch (OperationCanceledException)
            {
                time.Advance(TimeSpan.FromMilliseconds(100));
            }

            Assert.That(time.GetElapsedTime(start), Is.LessThan(TimeSpan.FromSeconds(10)), "the replay did not progress");
        }

        await run.WaitAsync(TestClient.Timeout);
        Assert.That(arrivals[0], Is.EqualTo(TimeSpan.Zero));
        Assert.That(arrivals[1], Is.InRange(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1.5)));
        Assert.That(arrivals[2], Is.InRange(TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(3.5)));
    }

    [Test]
    public async Task ReplayFeed_StartsAgain_WhenLoopIsSet()
    {
        var path = Write("day.csv", $"{A},2026-01-19T03:45:00Z,1450,1", $"{B},2026-01-19T03:45:01Z,1536,2");
        var ticks = Channel.CreateUnbounded<Tick>();
        using var stop = new CancellationTokenSource();
        var run = Feed(path, speed: 0, TimeProvider.System, loop: true).RunAsync(ticks.Writer, stop.Token);

        var played = new List<int>();
        while (played.Count < 6)
        {
            played.Add((await ticks.Reader.ReadAsync().AsTask().WaitAsync(TestClient.Timeout)).InstrumentId);
        }

        await stop.CancelAsync();
        Assert.That(played, Is.EqualTo(new[] { 0, 1, 0, 1, 0, 1 }));
        // The feed ends at the stop, by returning or by the cancellation, whichever its loop meets first.
        try
        {
            await run.WaitAsync(TestClient.Timeout);
        }
        catch (OperationCanceledException)
        {
        }

        Assert.That(run.IsCompleted, Is.True);
    }

    [Test]
    public void TickFile_RoundTripsCsvAndJsonLines()
    {
        var tick = new TickRecord(A, 1_768_794_300_123_456, 1450.35, 98_765);

        Assert.That(TickFile.Parse(TickFile.Format(tick, jsonLines: false), jsonLines: false), Is.EqualTo(tick));
        Assert.That(TickFile.Parse(TickFile.Format(tick, jsonLines: true), jsonLines: true), Is.EqualTo(tick));
        Assert.That(TickFile.Format(tick, jsonLines: false), Is.EqualTo($"{A},2026-01-19T03:45:00.123456Z,1450.35,98765"));
    }

    [Test]
    public async Task RecordThenReplay_GivesTheSameLastPrices()
    {
        var recording = Path.Combine(_folder, "recorded", "day.csv");
        var sample = SampleFile();
        var sampleTicks = File.ReadLines(sample).Count(l => !l.StartsWith('#') && !l.StartsWith("instrument_key", StringComparison.Ordinal));
        Dictionary<string, double> recorded;
        await using (var daemon = await TestDaemon.StartAsync(new Dictionary<string, string>
        {
            ["Feed:Source"] = "Replay",
            ["Feed:Replay:Path"] = sample,
            ["Feed:Replay:Speed"] = "0",
            ["Feed:Record:Path"] = recording,
        }))
        {
            await WaitForReplayEndAsync(daemon, sampleTicks);
            recorded = await LastPricesAsync(daemon);
            Assert.That(Volatile.Read(ref daemon.Services.GetRequiredService<FeedMetrics>().ReplaySkippedLines), Is.Zero, "the sample file is clean");
        }

        Assert.That(File.ReadLines(recording).First(), Is.EqualTo(TickFile.FormatComment), "a recording says its format");
        Assert.That(File.ReadLines(recording).Count(l => !l.StartsWith('#')), Is.EqualTo(File.ReadLines(sample).Count(l => !l.StartsWith('#'))), "a header and every tick");
        await using var replay = await TestDaemon.StartAsync(new Dictionary<string, string>
        {
            ["Feed:Source"] = "Replay",
            ["Feed:Replay:Path"] = recording,
            ["Feed:Replay:Speed"] = "0",
        });
        await WaitForReplayEndAsync(replay, sampleTicks);

        Assert.That(recorded, Has.Count.EqualTo(10));
        Assert.That(await LastPricesAsync(replay), Is.EquivalentTo(recorded));
    }

    private static async Task WaitForReplayEndAsync(TestDaemon daemon, int ticks)
    {
        var status = daemon.Services.GetRequiredService<FeedStatus>();
        await Eventually.TrueAsync(() => status.Current.Message.StartsWith("Replay finished", StringComparison.Ordinal), "the end of the replay");
        // Throttle:MinIntervalMs is 0 in tests: every tick is emitted (and cached) once the stage has read it.
        var metrics = daemon.Services.GetRequiredService<PriceDaemon.Pipeline.PipelineMetrics>();
        await Eventually.TrueAsync(() => Volatile.Read(ref metrics.UpdatesEmitted) >= ticks, "the pipeline to emit every tick");
    }

    /// <summary>config/sample-ticks.csv of this checkout, found upwards from the test binaries.</summary>
    private static string SampleFile()
    {
        for (var folder = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); folder is not null; folder = folder.Parent)
        {
            var candidate = Path.Combine(folder.FullName, "config", "sample-ticks.csv");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("config/sample-ticks.csv not found above the test directory");
    }

    private static async Task<Dictionary<string, double>> LastPricesAsync(TestDaemon daemon)
    {
        var cache = daemon.Services.GetRequiredService<PriceDaemon.Pipeline.PriceCache>();
        await Task.Yield();
        var prices = new Dictionary<string, double>();
        // The cached frames are pooled: read them inside a scope, so none is refilled with another price meanwhile.
        using (var scope = cache.Read())
        {
            foreach (var instrument in daemon.Instruments.All)
            {
                if (cache.Get(instrument.Id) is { Source: PriceSource.Replay } frame)
                {
                    prices[instrument.Key] = frame.LastPrice;
                }
            }
        }

        return prices;
    }

    private ReplayFeed Feed(string path, double speed, TimeProvider time, bool loop = false)
    {
        var options = new FeedOptions();
        options.Replay.Path = path;
        options.Replay.Speed = speed;
        options.Replay.Loop = loop;
        return new ReplayFeed(_instruments, Options.Create(options), new FeedStatus(), _metrics, time, NullLogger<ReplayFeed>.Instance);
    }

    private string Write(string name, params string[] lines)
    {
        var path = Path.Combine(_folder, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    private static List<Tick> ReadAll(ChannelReader<Tick> reader)
    {
        var list = new List<Tick>();
        while (reader.TryRead(out var tick))
        {
            list.Add(tick);
        }

        return list;
    }
}
