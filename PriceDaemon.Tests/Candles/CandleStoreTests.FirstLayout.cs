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
    public void FirstLayout_IsReadInPlace_MergedWithBarsWrittenSince_AndPrunedUntilItIsGone()
    {
        var (bars, _) = WriteFirstLayout();
        Assert.That(Documents()["bars_1m"], Is.EqualTo(71 * 20), "the file is of the first layout: a document per bar");

        using (var store = CandleStore.Open(_path))
        {
            Assert.That(All(store, Key(0)), Is.EqualTo(Expected(0, Enumerable.Range(0, 20))));
            Assert.That(All(store, Unicode), Is.EqualTo(Expected(999, Enumerable.Range(0, 20))));
            Assert.That(All(store, Key(69), CandleIntervals.Day), Is.EqualTo(Expected(69, [0, 1, 2], CandleIntervals.Day)));
            Assert.That(store.NewestStart(0), Is.EqualTo(StartUs(19)));
            Assert.That(store.LoadForming().Single().Key, Is.EqualTo(Key(1)), "the forming state is untouched");
        }

        var opened = Documents();
        Assert.That(opened["bars_1m"], Is.EqualTo(71 * 20), "opening moved nothing");
        Assert.That(opened.GetValueOrDefault("bar_blocks_1m") + opened.GetValueOrDefault("bar_chunks"), Is.Zero);
        Assert.That(opened.Keys.Where(n => n.StartsWith("bars_", StringComparison.Ordinal)), Is.EquivalentTo(new[] { "bars_1m", "bars_1d" }),
            "the first layout's empty collections are dropped");

        using (var store = CandleStore.Open(_path))
        {
            // Minute 20 goes to a block; so does a minute 19 of instrument 5 again (a backfill, say), the same start
            // as a bar of the first layout; and an older day bar while the newest day is the first layout's.
            var changed = Closed(5, 19) with { Close = 555 };
            store.Write([.. Minute(Enumerable.Range(0, 70), 20), (Key(5), 0, changed), (Key(5), CandleIntervals.Day, Closed(5, -1, CandleIntervals.Day))], []);
            var five = Expected(5, Enumerable.Range(0, 19)).Append(changed).Append(Closed(5, 20)).ToArray();
            Assert.Multiple(() =>
            {
                Assert.That(All(store, Key(5)), Is.EqualTo(five), "both layouts, the block's bar at the same start");
                Assert.That(store.Read(Key(5), 0, long.MinValue, long.MaxValue, 3), Is.EqualTo(five[^3..]), "the newest three across the switch");
                Assert.That(store.Read(Key(5), 0, StartUs(17), StartUs(20), 10), Is.EqualTo(five[17..20]), "a range ending at the switch");
                Assert.That(store.Read(Key(5), 0, StartUs(2), StartUs(4), 10), Is.EqualTo(five[2..4]), "a range of the first layout only");
                Assert.That(store.Read(Key(6), 0, StartUs(19), long.MaxValue, 10), Is.EqualTo(Expected(6, [19, 20])));
                Assert.That(All(store, Unicode), Is.EqualTo(Expected(999, Enumerable.Range(0, 20))), "an instrument of the first layout only");
                Assert.That(All(store, Key(5), CandleIntervals.Day), Is.EqualTo(Expected(5, [-1, 0, 1, 2], CandleIntervals.Day)));
                Assert.That(store.NewestStart(0), Is.EqualTo(StartUs(20)), "the blocks' newest");
                Assert.That(store.NewestStart(CandleIntervals.Day), Is.EqualTo(StartUs(2, CandleIntervals.Day)), "the first layout's newest");
            });

            // Pruning counts both; once the first layout's bars are all past retention, its collection goes.
            Assert.That(store.Prune(0, StartUs(5)), Is.EqualTo(71 * 5));
            Assert.That(Documents()["bars_1m"], Is.EqualTo(71 * 15));
            Assert.That(store.Prune(0, StartUs(20)), Is.EqualTo((71 * 15) + 1), "the first layout's minutes 5-19 and the block's minute 19");
            Assert.That(All(store, Key(5)), Is.EqualTo(Expected(5, [20])));
        }

        var documents = Documents();
        Assert.That(documents.Keys.Where(n => n.StartsWith("bars_", StringComparison.Ordinal)), Is.EqualTo(new[] { "bars_1d" }), "bars_1m emptied and dropped");
        using (var store = CandleStore.Open(_path))
        {
            Assert.That(All(store, Key(5)), Is.EqualTo(Expected(5, [20])));
            Assert.That(All(store, Unicode), Is.Empty);
            Assert.That(All(store, Key(5), CandleIntervals.Day), Is.EqualTo(Expected(5, [-1, 0, 1, 2], CandleIntervals.Day)));
            Assert.That(store.NewestStart(0), Is.EqualTo(StartUs(20)));
        }

        Assert.That(bars, Has.Count.EqualTo((71 * 20) + (70 * 3)));
    }

    [Test]
    public void FirstLayout_WithADamagedBar_FailsTheReadThatMeetsIt_AndIsLeftAsItWas()
    {
        // Bars of instruments 0, 2 and 3: a start that is not the id's, an open that is not a number, no volume.
        WriteFirstLayout(db =>
        {
            var bars = db.GetCollection(LegacyBars.Collection(0));
            bars.Upsert(new BsonDocument { ["_id"] = LegacyBars.Id(Key(0), StartUs(30)), ["t"] = 1L, ["o"] = 1.0, ["h"] = 1.0, ["l"] = 1.0, ["c"] = 1.0, ["v"] = 1L });
            bars.Upsert(new BsonDocument { ["_id"] = LegacyBars.Id(Key(2), StartUs(30)), ["t"] = StartUs(30), ["o"] = "x", ["h"] = 1.0, ["l"] = 1.0, ["c"] = 1.0, ["v"] = 1L });
            bars.Upsert(new BsonDocument { ["_id"] = LegacyBars.Id(Key(3), StartUs(30)), ["t"] = StartUs(30), ["o"] = 1.0, ["h"] = 1.0, ["l"] = 1.0, ["c"] = 1.0 });
        });

        using (var store = CandleStore.Open(_path))
        {
            // InvalidDataException, which the service's catches handle; a missing field is not a bar at price 0.
            Assert.That(() => All(store, Key(0)), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("not its id's"));
            Assert.That(() => All(store, Key(2)), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("lacks a number"));
            Assert.That(() => All(store, Key(3)), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("lacks a number"));
            Assert.That(All(store, Key(1)), Is.EqualTo(Expected(1, Enumerable.Range(0, 20))), "other instruments read");
        }

        Assert.That(Documents()["bars_1m"], Is.EqualTo((71 * 20) + 3), "the damaged bars are kept, with every other");
    }

    /// <summary>The candle service on this test's file, instruments 0-69, its clock at minute 21.</summary>
    private (CandleService Service, CandleBook Book, FakeTimeProvider Time) Service(TestMeterFactory meters)
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(StartUs(21) / 1000));
        var registry = new InstrumentRegistry(Enumerable.Range(0, 70).Select(i => (Key(i), $"T{i}", $"T {i}", 100.0 + i)));
        var options = new CandleOptions { Path = _path };
        var book = new CandleBook(registry, new CandleSession(options, includeOutsideSession: false), time);
        var service = new CandleService(
            book, Options.Create(options), Options.Create(new StorageOptions()), Options.Create(new ThrottleOptions { MinIntervalMs = 100 }),
            time, NullLogger<CandleService>.Instance, meters, []);
        return (service, book, time);
    }

    [Test]
    public async Task FirstLayout_OpenedByTheService_ServesItsHistory_AndBarsClosedSinceAreWrittenOnce()
    {
        WriteFirstLayout();
        using var meters = new TestMeterFactory();
        var (service, book, time) = Service(meters);
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
        Assert.That(All(store, Key(3)).Select(b => b.StartUs), Is.EqualTo(Enumerable.Range(0, 20).Append(21).Select(m => StartUs(m))));
    }
}
