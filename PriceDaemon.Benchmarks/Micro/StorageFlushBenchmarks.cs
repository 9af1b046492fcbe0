using BenchmarkDotNet.Attributes;
using LiteDB;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;
using PriceDaemon.Pipeline;
using PriceDaemon.Storage;

namespace PriceDaemon.Benchmarks.Micro;

/// <summary>
/// One write-behind flush: every instrument updated since the last flush is upserted into a real LiteDB
/// file in one transaction. Runs once per Storage:FlushIntervalMs, off the tick path, so it has a budget of
/// its own and is measured per flush, not per tick. The baseline writes the same prices as the layout before
/// packed blocks did (64 chunks, each an array of one BSON document per price), to keep the comparison.
/// </summary>
[MemoryDiagnoser]
public class StorageFlushBenchmarks
{
    private string _directory = "";
    private StorageService _storage = null!;
    private PriceCache _cache = null!;
    private PriceFrame[] _frames = [];
    private LiteDatabase _chunksDb = null!;
    private Dictionary<string, StoredPrice>[] _chunks = [];

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

        _chunksDb = new LiteDatabase(new ConnectionString { Filename = Path.Combine(_directory, "chunks.db"), Connection = ConnectionType.Direct });
        _chunks = [.. Enumerable.Range(0, 64).Select(static _ => new Dictionary<string, StoredPrice>())];
        foreach (var frame in _frames)
        {
            var key = instruments[frame.InstrumentId].Key;
            _chunks[PriceStore.ChunkOf(key)][key] = Stored(key, frame);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _storage.Dispose();
        _chunksDb.Dispose();
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

    /// <summary>The same flush as the earlier layout wrote it: every chunk rewritten as an array of price documents.</summary>
    [Benchmark(Baseline = true)]
    public int Flush_ChunksOfDocuments()
    {
        var collection = _chunksDb.GetCollection("price_chunks");
        _chunksDb.BeginTrans();
        var written = 0;
        for (var chunk = 0; chunk < _chunks.Length; chunk++)
        {
            if (_chunks[chunk].Count == 0)
            {
                continue;
            }

            var entries = new BsonArray();
            foreach (var price in _chunks[chunk].Values)
            {
                entries.Add(new BsonDocument
                {
                    ["key"] = price.Key,
                    ["last_price"] = price.LastPrice,
                    ["volume"] = price.Volume,
                    ["timestamp_us"] = price.TimestampUs,
                    ["change_percent"] = price.ChangePercent,
                    ["previous_close"] = price.PreviousClose,
                    ["seq"] = price.Seq,
                    ["source"] = price.Source,
                });
            }

            collection.Upsert(new BsonDocument { ["_id"] = chunk, ["prices"] = entries });
            written++;
        }

        _chunksDb.Commit();
        return written;
    }

    private static StoredPrice Stored(string key, PriceFrame frame) =>
        new(key, frame.LastPrice, frame.Volume, frame.TimestampUs, frame.ChangePercent, frame.PreviousClose, frame.Seq, "simulated");
}
