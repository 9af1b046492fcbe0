using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;
using PriceDaemon.Pipeline;
using PriceDaemon.Storage;

namespace PriceDaemon.Benchmarks.Micro;

/// <summary>
/// One write-behind flush: every instrument updated since the last flush is upserted into a real LiteDB
/// file in one transaction. Runs once per Storage:FlushIntervalMs, off the tick path, so it has a budget of
/// its own and is measured per flush, not per tick.
/// </summary>
[MemoryDiagnoser]
public class StorageFlushBenchmarks
{
    private string _directory = "";
    private StorageService _storage = null!;
    private PriceCache _cache = null!;
    private PriceFrame[] _frames = [];

    [Params(50, 500, 2_000, 5_000)]
    public int DirtyInstruments { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var instruments = Universe.Create(DirtyInstruments);
        _directory = Directory.CreateTempSubdirectory("pricedaemon-bench-").FullName;
        _cache = new PriceCache(instruments);
        _storage = new StorageService(
            Options.Create(new StorageOptions { Path = Path.Combine(_directory, "prices.db") }),
            Options.Create(new FeedOptions()),
            _cache,
            instruments,
            TimeProvider.System,
            NullLogger<StorageService>.Instance);
        _storage.Open();

        var encoder = new FrameEncoder(microseconds: true);
        _frames = [.. instruments.All.Select(i => encoder.Encode(i, Universe.Tick(i.Id, i.ReferencePrice + 0.05, 1_000 + i.Id), 2, i.ReferencePrice))];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _storage.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark]
    public bool Flush()
    {
        // The throttle stage marks instruments dirty as it emits; here every instrument was updated once.
        foreach (var frame in _frames)
        {
            _cache.Set(frame);
        }

        return _storage.Flush();
    }
}
