using LiteDB;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Candles;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Storage;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Candles;

/// <summary>Files of the first layout (one document per closed bar in <c>bars_1m</c>, ...), written as that code wrote them.</summary>
public sealed partial class CandleStoreTests
{
    private const string Unicode = "NSE_EQ|ÄÖ→✓";

    /// <summary>A first-layout file: 70 instruments (and one with a non-ASCII key) with 20 minute bars and 3 day bars, and a forming chunk.</summary>
    private (List<(string Key, int Interval, Bar Bar)> Bars, byte[] Forming) WriteFirstLayout(Action<LiteDatabase>? more = null)
    {
        var ids = Enumerable.Range(0, 70).ToList();
        var bars = new List<(string Key, int Interval, Bar Bar)>();
        for (var bar = 0; bar < 20; bar++)
        {
            bars.AddRange(Minute(ids, bar));
            bars.Add((Unicode, 0, Closed(999, bar)));
        }

        for (var day = 0; day < 3; day++)
        {
            bars.AddRange(Minute(ids, day, CandleIntervals.Day));
        }

        var formingBars = new Bar[CandleIntervals.Count];
        formingBars[0] = Closed(1, 20) with { EndUs = StartUs(21), Forming = true };
        var forming = new byte[16];
        var length = 0;
        CandleStore.AppendForming(ref forming, ref length, Key(1), formingBars, 4_321, 20_422);
        forming = forming[..length];

        using var db = new LiteDatabase(new ConnectionString { Filename = _path, Connection = ConnectionType.Direct });
        LegacyBars.Create(db);
        LegacyBars.Write(db, bars);
        db.GetCollection("forming").Upsert(new BsonDocument { ["_id"] = 0, ["p"] = forming });
        more?.Invoke(db);
        return (bars, forming);
    }

    [Test]
    public void FirstLayout_IsMovedAtOpen_AndReadsPrunesAndGoesOn()
    {
        var (bars, _) = WriteFirstLayout();
        Assert.That(Documents()["bars_1m"], Is.EqualTo(71 * 20), "the file is of the first layout: a document per bar");

        // Blocks written every 2 while moving: most blocks are written, then read back, within the one transaction.
        using (var store = CandleStore.Open(_path, maxHeldBlocks: 2))
        {
            Assert.That(store.MovedBars, Is.EqualTo(bars.Count));
            Assert.That(All(store, Key(0)), Is.EqualTo(Expected(0, Enumerable.Range(0, 20))));
            Assert.That(All(store, Unicode), Is.EqualTo(Expected(999, Enumerable.Range(0, 20))));
            Assert.That(All(store, Key(69), CandleIntervals.Day), Is.EqualTo(Expected(69, [0, 1, 2], CandleIntervals.Day)));
            Assert.That(store.NewestStart(0), Is.EqualTo(StartUs(19)));
            Assert.That(store.NewestStart(CandleIntervals.Day), Is.EqualTo(StartUs(2, CandleIntervals.Day)));
            Assert.That(store.LoadForming().Single().Key, Is.EqualTo(Key(1)), "the forming state is untouched");

            // It goes on: minute 20 joins the block of 15-30 the move made, and pruning counts bars as before.
            store.Write(Minute(Enumerable.Range(0, 70), 20), []);
            Assert.That(All(store, Key(5)), Is.EqualTo(Expected(5, Enumerable.Range(0, 21))));
            Assert.That(store.Prune(0, StartUs(5)), Is.EqualTo(71 * 5));
            Assert.That(store.Read(Unicode, 0, long.MinValue, long.MaxValue, 2), Is.EqualTo(Expected(999, [18, 19])));
        }

        var documents = Documents();
        Assert.That(documents.Keys.Where(n => n.StartsWith("bars_", StringComparison.Ordinal)), Is.Empty, "the first layout's collections are dropped");
        Assert.That(documents["bar_blocks_1m"], Is.EqualTo(2 * 2), "two chunks (64 + 7 instruments) by two periods");
        Assert.That(Places().Keys.Order(StringComparer.Ordinal), Is.EqualTo(Places().OrderBy(p => p.Value).Select(p => p.Key)), "places taken in key order");

        using (var store = CandleStore.Open(_path))
        {
            Assert.That(store.MovedBars, Is.Zero, "moved once");
            Assert.That(All(store, Key(5)), Is.EqualTo(Expected(5, Enumerable.Range(5, 16))));
            Assert.That(All(store, Key(5), CandleIntervals.Day), Is.EqualTo(Expected(5, [0, 1, 2], CandleIntervals.Day)));
        }
    }

    [Test]
    public void FirstLayout_WithADamagedBar_IsRefused_AndLeftAsItWas()
    {
        // The 1m bars are moved (and blocks written, every 2) before the damaged 5m document is met.
        var (bars, _) = WriteFirstLayout(db => db.GetCollection(LegacyBars.Collection(1)).Insert(new BsonDocument { ["_id"] = "junk", ["t"] = 1L }));
        var before = Documents();

        Assert.That(() => CandleStore.Open(_path, maxHeldBlocks: 2), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("junk"));

        var after = Documents();
        Assert.That(after["bars_1m"], Is.EqualTo(before["bars_1m"]));
        Assert.That(after["bars_5m"], Is.EqualTo(1));
        Assert.That(after["bars_1d"], Is.EqualTo(70 * 3));
        Assert.That(after.GetValueOrDefault("bar_blocks_1m"), Is.Zero, "no block of the failed move");
        Assert.That(after.GetValueOrDefault("bar_chunks"), Is.Zero, "no place of the failed move");
        using var db = new LiteDatabase(new ConnectionString { Filename = _path, Connection = ConnectionType.Direct, ReadOnly = true });
        var first = db.GetCollection(LegacyBars.Collection(0)).FindAll().Select(LegacyBars.Read).ToList();
        Assert.That(first, Is.EquivalentTo(bars.Where(b => b.Interval == 0).Select(b => (b.Key, b.Bar))), "every bar of the first layout still there");
    }

    [Test]
    public async Task FirstLayout_OpenedByTheService_ServesItsHistory_AndBarsClosedSinceAreWrittenOnce()
    {
        WriteFirstLayout();
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(StartUs(21) / 1000));
        var registry = new InstrumentRegistry(Enumerable.Range(0, 70).Select(i => (Key(i), $"T{i}", $"T {i}", 100.0 + i)));
        var options = new CandleOptions { Path = _path };
        var book = new CandleBook(registry, new CandleSession(options, includeOutsideSession: false), time);
        using var meters = new TestMeterFactory();
        var service = new CandleService(
            book, Options.Create(options), Options.Create(new StorageOptions()), Options.Create(new ThrottleOptions { MinIntervalMs = 100 }),
            time, NullLogger<CandleService>.Instance, meters, []);
        service.Open();
        Assert.That(service.History(Key(3), 0, 5), Is.EqualTo(Expected(3, [15, 16, 17, 18, 19])));

        // Instrument 3 trades in minute 21, and the clock passes its end: that bar closes, and so does instrument 1's
        // minute 20, restored from the forming chunk.
        book.Observe(new Tick(3, 105, 50_000, StartUs(21) + 5_000_000, 0, PriceSource.Live));
        service.Pass();
        time.Advance(TimeSpan.FromMinutes(2));
        service.Pass();
        var expected = new[] { 17, 18, 19, 21 }.Select(m => StartUs(m));
        Assert.That(service.History(Key(3), 0, 4).Select(b => b.StartUs), Is.EqualTo(expected), "the file's bars and the one closed since");
        service.Flush();
        Assert.That(service.History(Key(3), 0, 4).Select(b => b.StartUs), Is.EqualTo(expected), "written: the same, once");
        Assert.That(service.History(Key(1), 0, 2).Select(b => b.StartUs), Is.EqualTo(new[] { StartUs(19), StartUs(20) }));

        // Stopping writes what is left and closes the file.
        await service.StartAsync(CancellationToken.None);
        await service.StopAsync(CancellationToken.None);
        using var store = CandleStore.Open(_path);
        Assert.That(store.MovedBars, Is.Zero);
        Assert.That(All(store, Key(3)).Select(b => b.StartUs), Is.EqualTo(Enumerable.Range(0, 20).Append(21).Select(m => StartUs(m))));
    }
}
