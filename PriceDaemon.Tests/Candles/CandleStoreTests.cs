using System.Text;
using LiteDB;
using PriceDaemon.Candles;
using PriceDaemon.Storage;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Candles;

/// <summary>
/// The candle file, real LiteDB files in a temporary folder: closed bars packed into blocks of a chunk of instruments by
/// a period of bars (ranges, limits, pruning, restarts, places that never move, a failed write retried), and the
/// forming state's packed chunks that round-trip and shrink with the instrument list.
/// </summary>
public sealed partial class CandleStoreTests
{
    // Monday 2026-11-30 09:15 IST is 03:45 UTC: 1-minute blocks (16 minutes from the epoch) start at 03:44, 04:00,
    // 04:16, so minutes 0-14 of the session are one block, 15-30 the next, 31-46 the next.
    private static readonly long OpenUs = new DateTimeOffset(2026, 11, 30, 9, 15, 0, TimeSpan.FromHours(5.5)).ToUnixTimeMilliseconds() * 1000;

    private string _folder = null!;
    private string _path = null!;

    [SetUp]
    public void SetUp()
    {
        _folder = Directory.CreateTempSubdirectory("pricedaemon-candles-").FullName;
        _path = Path.Combine(_folder, "candles.db");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    private static string Key(int instrument) => $"NSE_EQ|T{instrument:D4}";

    private static long StartUs(int bar, int interval = 0) => OpenUs + (bar * CandleIntervals.LengthUs[interval]);

    /// <summary>A closed bar as history returns it (no end, not forming), with fields that differ per instrument and bar.</summary>
    private static Bar Closed(int instrument, int bar, int interval = 0) => new()
    {
        StartUs = StartUs(bar, interval),
        Open = 100 + instrument + (bar / 100.0),
        High = 101.5 + instrument + (bar / 100.0),
        Low = 99.25 + instrument - (bar / 100.0),
        Close = 100.75 + instrument,
        Volume = (instrument * 100_000L) + bar,
    };

    private static List<(string Key, int Interval, Bar Bar)> Minute(IEnumerable<int> instruments, int bar, int interval = 0) =>
        [.. instruments.Select(i => (Key(i), interval, Closed(i, bar, interval)))];

    private static Bar[] Expected(int instrument, IEnumerable<int> bars, int interval = 0) => [.. bars.Select(b => Closed(instrument, b, interval))];

    private static List<Bar> All(CandleStore store, string key, int interval = 0) => store.Read(key, interval, long.MinValue, long.MaxValue, 5000);

    /// <summary>Documents per collection, read after the store is closed.</summary>
    private Dictionary<string, int> Documents()
    {
        using var db = new LiteDatabase(new ConnectionString { Filename = _path, Connection = ConnectionType.Direct, ReadOnly = true });
        return db.GetCollectionNames().ToDictionary(n => n, n => db.GetCollection(n).Count());
    }

    /// <summary>Each instrument's chunk and slot as the file holds them.</summary>
    private Dictionary<string, (int Chunk, int Slot)> Places()
    {
        using var db = new LiteDatabase(new ConnectionString { Filename = _path, Connection = ConnectionType.Direct, ReadOnly = true });
        return db.GetCollection("bar_chunks").FindAll()
            .SelectMany(d => d["k"].AsArray.Select((key, slot) => (Key: Encoding.UTF8.GetString(key.AsBinary), Chunk: d["_id"].AsInt32, Slot: slot)))
            .ToDictionary(p => p.Key, p => (p.Chunk, p.Slot));
    }

    [Test]
    public void ClosedBars_RoundTripAcrossBlocksAndChunks_OneDocumentPerChunkAndPeriod()
    {
        const int instruments = 150; // chunks of 64, 64 and 22
        var ids = Enumerable.Range(0, instruments).ToList();
        using (var store = CandleStore.Open(_path))
        {
            // A flush a minute, as the service writes them; 5-minute bars beside them, every fifth minute.
            for (var bar = 0; bar < 40; bar++)
            {
                store.Write([.. Minute(ids, bar), .. bar % 5 == 4 ? Minute(ids, bar / 5, 1) : []], []);
            }

            Assert.That(All(store, Key(0)), Is.EqualTo(Expected(0, Enumerable.Range(0, 40))), "read while the newest blocks are in memory");
        }

        var documents = Documents();
        Assert.That(documents["bar_blocks_1m"], Is.EqualTo(3 * 3), "3 chunks by 3 periods (minutes 0-14, 15-30, 31-39)");
        Assert.That(documents["bar_blocks_5m"], Is.EqualTo(3 * 2), "8 five-minute bars in two 80-minute periods (03:45-03:55, 04:00-04:20 UTC)");
        Assert.That(documents["bar_chunks"], Is.EqualTo(3), "one document of places per chunk");
        Assert.That(Places().Values, Is.EquivalentTo(ids.Select(i => (i / 64, i % 64))), "instruments in chunks of 64, in the order they first closed a bar");

        using (var store = CandleStore.Open(_path))
        {
            foreach (var i in ids)
            {
                Assert.That(All(store, Key(i)), Is.EqualTo(Expected(i, Enumerable.Range(0, 40))), Key(i));
                Assert.That(All(store, Key(i), 1), Is.EqualTo(Expected(i, Enumerable.Range(0, 8), 1)), Key(i));
            }

            Assert.That(store.NewestStart(0), Is.EqualTo(StartUs(39)));
            Assert.That(store.NewestStart(1), Is.EqualTo(StartUs(7, 1)));
            Assert.That(store.NewestStart(2), Is.Null);
        }
    }

    [Test]
    public void Read_GivesTheNewestLimitInFromTo_OldestFirst_AtEveryEdge()
    {
        // Instrument 1's neighbours share its blocks: only its own slot is read.
        using var store = CandleStore.Open(_path);
        for (var bar = 0; bar < 40; bar++)
        {
            store.Write(Minute([0, 1, 2], bar), []);
        }

        var key = Key(1);
        Assert.Multiple(() =>
        {
            Assert.That(store.Read(key, 0, StartUs(10), StartUs(20), 100), Is.EqualTo(Expected(1, Enumerable.Range(10, 10))), "from included, to not");
            Assert.That(store.Read(key, 0, StartUs(10) + 1, StartUs(20) + 1, 100), Is.EqualTo(Expected(1, Enumerable.Range(11, 10))));
            Assert.That(store.Read(key, 0, StartUs(10), StartUs(20), 3), Is.EqualTo(Expected(1, [17, 18, 19])), "the newest three of the range");
            Assert.That(store.Read(key, 0, long.MinValue, long.MaxValue, 3), Is.EqualTo(Expected(1, [37, 38, 39])));
            Assert.That(store.Read(key, 0, StartUs(13), StartUs(17), 4), Is.EqualTo(Expected(1, [13, 14, 15, 16])), "across a block's end");
            Assert.That(store.Read(key, 0, StartUs(0), StartUs(40), 40), Is.EqualTo(Expected(1, Enumerable.Range(0, 40))), "exactly all, at the limit");
            Assert.That(store.Read(key, 0, StartUs(14), StartUs(15), 10), Is.EqualTo(Expected(1, [14])), "a block's last bar alone");
            Assert.That(store.Read(key, 0, StartUs(15), StartUs(16), 10), Is.EqualTo(Expected(1, [15])), "a block's first bar alone");
            Assert.That(store.Read(key, 0, StartUs(10), StartUs(10), 10), Is.Empty, "an empty range");
            Assert.That(store.Read(key, 0, StartUs(10), StartUs(20), 0), Is.Empty, "no limit");
            Assert.That(store.Read(key, 0, StartUs(-100), StartUs(0), 10), Is.Empty, "before the first bar");
            Assert.That(store.Read(key, 0, StartUs(40), long.MaxValue, 10), Is.Empty, "after the last bar");
            Assert.That(store.Read(key, 1, long.MinValue, long.MaxValue, 10), Is.Empty, "another interval");
            Assert.That(store.Read("NSE_EQ|NOPE", 0, long.MinValue, long.MaxValue, 10), Is.Empty, "an instrument without bars");
        });
    }

    [Test]
    public void Write_OutOfOrderAndAgain_ReplacesTheSameBar_AndKeepsTimeOrder()
    {
        // The NATS backfill imports bars of any age, also ones already stored; a retried flush writes its bars again.
        using (var store = CandleStore.Open(_path))
        {
            store.Write(Minute([0, 1], 35), []);
            store.Write(Minute([0, 1], 3), []);   // an older block, read back and written whole
            store.Write([.. Minute([1], 20), .. Minute([0], 3), .. Minute([0], 20), .. Minute([1], 3)], []);
            var changed = Closed(1, 35) with { Close = 555, Volume = 1 };
            store.Write([("NSE_EQ|T0001", 0, changed), ("NSE_EQ|T0001", 0, changed)], []);
            Assert.That(All(store, Key(0)), Is.EqualTo(Expected(0, [3, 20, 35])));
            Assert.That(All(store, Key(1)), Is.EqualTo([Closed(1, 3), Closed(1, 20), changed]), "the same instrument and start: replaced, not doubled");
        }

        using (var store = CandleStore.Open(_path))
        {
            Assert.That(All(store, Key(0)), Is.EqualTo(Expected(0, [3, 20, 35])));
            Assert.That(store.Read(Key(1), 0, long.MinValue, long.MaxValue, 1)[0].Close, Is.EqualTo(555));
        }
    }

    [Test]
    public void Prune_AcrossBlocks_CountsTheBarsRemoved_AndWritingGoesOn()
    {
        var ids = Enumerable.Range(0, 100).ToList(); // two chunks
        using (var store = CandleStore.Open(_path))
        {
            for (var bar = 0; bar < 40; bar++)
            {
                store.Write(Minute(ids, bar), []);
            }

            // Minute 20 is inside the second block (15-30): the first block goes, the second loses minutes 15-19.
            Assert.That(store.Prune(0, StartUs(20)), Is.EqualTo(100 * 20));
            Assert.That(store.Prune(0, StartUs(20)), Is.Zero, "nothing more before 20");
            Assert.That(store.Prune(1, StartUs(20)), Is.Zero, "another interval, empty");
            Assert.That(All(store, Key(64)), Is.EqualTo(Expected(64, Enumerable.Range(20, 20))));
            Assert.That(store.NewestStart(0), Is.EqualTo(StartUs(39)));
        }

        Assert.That(Documents()["bar_blocks_1m"], Is.EqualTo(2 * 2), "the wholly older block of each chunk deleted");

        using (var store = CandleStore.Open(_path))
        {
            Assert.That(All(store, Key(3)), Is.EqualTo(Expected(3, Enumerable.Range(20, 20))), "after a restart");

            // Everything, the newest blocks (held in memory) included; the next minute starts them again.
            Assert.That(store.Prune(0, StartUs(40)), Is.EqualTo(100 * 20));
            Assert.That(store.NewestStart(0), Is.Null);
            Assert.That(All(store, Key(3)), Is.Empty);
            store.Write(Minute(ids, 40), []);
            Assert.That(All(store, Key(3)), Is.EqualTo(Expected(3, [40])));
            Assert.That(store.NewestStart(0), Is.EqualTo(StartUs(40)));
        }
    }

    [Test]
    public void Prune_ThatRemovesNothing_WritesNothing()
    {
        using var store = CandleStore.Open(_path);
        for (var bar = 0; bar < 20; bar++)
        {
            store.Write(Minute([0, 1], bar), []);
        }

        // The block of minutes 15-30 began before minute 17, but only its bars 15 and 16 did: once they are gone, the
        // block matches every later prune at 17 and is left as it is.
        Assert.That(store.Prune(0, StartUs(17)), Is.EqualTo(2 * 17));
        var log = new FileInfo(Path.Combine(_folder, "candles-log.db"));
        var logged = log.Exists ? log.Length : 0;
        Assert.That(store.Prune(0, StartUs(17)), Is.Zero);
        log.Refresh();
        Assert.That(log.Exists ? log.Length : 0, Is.EqualTo(logged), "no page written to LiteDB's log");
        Assert.That(All(store, Key(1)), Is.EqualTo(Expected(1, [17, 18, 19])));
    }

    [Test]
    public void Reopen_MidBlock_AppendsToTheSameBlock_WithoutReadingTheRestBack()
    {
        var ids = Enumerable.Range(0, 10).ToList();
        using (var store = CandleStore.Open(_path))
        {
            for (var bar = 0; bar < 20; bar++)
            {
                store.Write(Minute(ids, bar), []);
            }
        }

        using (var store = CandleStore.Open(_path))
        {
            // Minutes 20-24 belong to the block of 15-30 that the last run left with 15-19 in it.
            for (var bar = 20; bar < 25; bar++)
            {
                store.Write(Minute(ids, bar), []);
            }

            Assert.That(All(store, Key(9)), Is.EqualTo(Expected(9, Enumerable.Range(0, 25))));
        }

        Assert.That(Documents()["bar_blocks_1m"], Is.EqualTo(2), "one chunk, two periods: the second block grew, none was added");
        using (var store = CandleStore.Open(_path))
        {
            Assert.That(All(store, Key(0)), Is.EqualTo(Expected(0, Enumerable.Range(0, 25))));
        }
    }

    [Test]
    public void InstrumentAddedAfterRestart_TakesTheNextFreePlace_AndNoOtherMoves()
    {
        var ids = Enumerable.Range(0, 70).ToList(); // chunk 0 full, chunk 1 with 6
        using (var store = CandleStore.Open(_path))
        {
            store.Write(Minute(ids, 0), []);
        }

        var before = Places();
        Assert.That(before.Values.Distinct().Count(), Is.EqualTo(70), "every instrument its own place");
        Assert.That(before.Values.Max(), Is.EqualTo((1, 5)));

        // The instrument list changed order and grew: the new instrument comes first, the old ones after, reversed.
        using (var store = CandleStore.Open(_path))
        {
            store.Write([.. Minute([500], 1), .. Minute(Enumerable.Reverse(ids), 1)], []);
            Assert.That(All(store, Key(500)), Is.EqualTo(Expected(500, [1])));
            Assert.That(All(store, Key(0)), Is.EqualTo(Expected(0, [0, 1])));
        }

        var after = Places();
        Assert.That(after[Key(500)], Is.EqualTo((1, 6)), "the next free slot of the last chunk");
        after.Remove(Key(500));
        Assert.That(after, Is.EqualTo(before), "no other instrument moved");
    }

    [Test]
    public void KeysDifferingOnlyInCase_AreTwoInstruments_InOneFlushAndInTwo()
    {
        // The registry compares keys ordinally; LiteDB compares string ids ignoring case.
        const string lower = "NSE_FO|abc", upper = "NSE_FO|ABC", mixed = "NSE_FO|Abc";
        using (var store = CandleStore.Open(_path))
        {
            store.Write([(lower, 0, Closed(1, 0)), (upper, 0, Closed(2, 0))], []);
            store.Write([(mixed, 0, Closed(3, 1)), (lower, 0, Closed(1, 1))], []);
            Assert.That(All(store, lower), Is.EqualTo(Expected(1, [0, 1])));
            Assert.That(All(store, upper), Is.EqualTo(Expected(2, [0])));
            Assert.That(All(store, mixed), Is.EqualTo(Expected(3, [1])));
        }

        Assert.That(Places().Keys, Is.EquivalentTo(new[] { lower, upper, mixed }));
        using (var store = CandleStore.Open(_path))
        {
            store.Write([(upper, 0, Closed(2, 2))], []);
            Assert.That(All(store, upper), Is.EqualTo(Expected(2, [0, 2])), "after a restart");
            Assert.That(All(store, mixed), Is.EqualTo(Expected(3, [1])));
        }
    }

    [Test]
    public void Write_ThatFails_CommitsNothing_AndTheRetryWritesEachBarOnce()
    {
        using (var store = CandleStore.Open(_path))
        {
            store.Write(Minute([0, 1], 0), []);

            // A forming chunk past LiteDB's document limit fails the transaction after the closed bars (one of them an
            // instrument new to the file, so its place is taken in the same transaction) were put in their blocks.
            var tooBig = new byte[17 * 1024 * 1024];
            var failing = Minute([0, 1, 2], 1);
            Assert.That(() => store.Write(failing, [(0, tooBig)]), Throws.InstanceOf<LiteException>());
            Assert.That(All(store, Key(0)), Is.EqualTo(Expected(0, [0])), "nothing of the failed write");
            Assert.That(All(store, Key(2)), Is.Empty);

            store.Write(failing, []);
            store.Write(Minute([0, 1, 2], 2), []);
            Assert.That(All(store, Key(0)), Is.EqualTo(Expected(0, [0, 1, 2])));
            Assert.That(All(store, Key(2)), Is.EqualTo(Expected(2, [1, 2])));
        }

        Assert.That(Places(), Is.EqualTo(new Dictionary<string, (int, int)> { [Key(0)] = (0, 0), [Key(1)] = (0, 1), [Key(2)] = (0, 2) }));
    }

    [Test]
    public void Open_RefusesAFileWithADamagedNewestBlock_AndLeavesItByteForByte()
    {
        using (var store = CandleStore.Open(_path))
        {
            store.Write(Minute(Enumerable.Range(0, 70), 0), []); // chunks 0 and 1
        }

        // Chunk 1's only block, as a later block version might have written it: the first write to the chunk would fail.
        using (var db = new LiteDatabase(new ConnectionString { Filename = _path, Connection = ConnectionType.Direct }))
        {
            var blocks = db.GetCollection("bar_blocks_1m");
            var block = blocks.FindAll().Single(d => d["_id"].AsInt64 >> 32 == 1);
            block["p"] = new byte[] { 2 };
            blocks.Update(block);
        }

        var before = File.ReadAllBytes(_path);
        var error = Assert.Throws<StorageException>(() => CandleStore.Open(_path));
        Assert.That(error!.Message, Does.StartWith($"Candles:Path: cannot use {_path}: it is damaged").And.Contain("version").And.Contain("left untouched"));
        Assert.That(File.ReadAllBytes(_path), Is.EqualTo(before));
        Assert.That(Directory.GetFiles(_folder).Select(Path.GetFileName), Is.EqualTo(new[] { "candles.db" }), "no LiteDB log file was created");
    }

    [TestCase("a key that is text", TestName = "Open_RefusesDamagedPlaces(a key that is text)")]
    [TestCase("the same key twice", TestName = "Open_RefusesDamagedPlaces(the same key twice)")]
    public void Open_RefusesDamagedPlaces_AndLeavesTheFileByteForByte(string damage)
    {
        using (var store = CandleStore.Open(_path))
        {
            store.Write(Minute(Enumerable.Range(0, 3), 0), []);
        }

        using (var db = new LiteDatabase(new ConnectionString { Filename = _path, Connection = ConnectionType.Direct }))
        {
            var chunks = db.GetCollection("bar_chunks");
            var places = chunks.FindById(0);
            var keys = places["k"].AsArray;
            if (damage == "a key that is text")
            {
                keys[1] = Key(1);
            }
            else
            {
                keys[2] = keys[0];
            }

            chunks.Update(places);
        }

        var before = File.ReadAllBytes(_path);
        var error = Assert.Throws<StorageException>(() => CandleStore.Open(_path));
        Assert.That(error!.Message, Does.StartWith($"Candles:Path: cannot use {_path}: it is damaged").And.Contain("chunk 0"));
        Assert.That(File.ReadAllBytes(_path), Is.EqualTo(before));
    }

    [TestCase(100)]
    [TestCase(9_000)]
    public void Open_RefusesAFileThatIsNotLiteDb_AndLeavesItByteForByte(int bytes)
    {
        // LiteDB opened for writing re-initialised the 100 bytes and truncated the 9,000 to a page.
        var junk = new byte[bytes];
        new Random(bytes).NextBytes(junk);
        File.WriteAllBytes(_path, junk);

        var error = Assert.Throws<StorageException>(() => CandleStore.Open(_path));
        Assert.That(error!.Message, Does.StartWith($"Candles:Path: cannot use {_path}: it is not a LiteDB database").And.Contain("left untouched"));
        Assert.That(File.ReadAllBytes(_path), Is.EqualTo(junk));
        Assert.That(Directory.GetFiles(_folder).Select(Path.GetFileName), Is.EqualTo(new[] { "candles.db" }), "no LiteDB log file was created");
    }

    [Test]
    public async Task ABlockWithoutAChunkAndPeriodId_FailsPruneAsInvalidData_AndTheServiceLogsIt()
    {
        using (var store = CandleStore.Open(_path))
        {
            store.Write(Minute([0, 1], 0), []);
        }

        // Not a chunk's newest block (its id is no number), so the open does not meet it; pruning does.
        using (var db = new LiteDatabase(new ConnectionString { Filename = _path, Connection = ConnectionType.Direct }))
        {
            db.GetCollection("bar_blocks_1m").Insert(new BsonDocument { ["_id"] = "junk", ["t"] = 0L, ["p"] = new byte[] { BarBlock.Version } });
        }

        using (var store = CandleStore.Open(_path))
        {
            Assert.That(() => store.Prune(0, StartUs(1)), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("junk"));
            Assert.That(All(store, Key(0)), Is.EqualTo(Expected(0, [0])), "the failed prune removed nothing");
        }

        // The service's prune catches it (a FormatException escaped the candle thread and stopped the host).
        using var meters = new TestMeterFactory();
        var (service, _, _) = Service(meters);
        service.Open();
        Assert.That(service.Prune, Throws.Nothing);
        Assert.That(service.History(Key(1), 0, 10), Is.EqualTo(Expected(1, [0])));
        await service.StartAsync(CancellationToken.None);
        await service.StopAsync(CancellationToken.None); // closes the file
    }

    [Test]
    public void Write_ThatFails_LeavesNothingOfItInTheBlocksHeldInMemory()
    {
        using (var store = CandleStore.Open(_path))
        {
            store.Write(Minute([0, 1], 0), []);

            // Instrument 0's minute 1 is put in the newest block held in memory, then its transaction fails; a later
            // write of only instrument 1's minute 1 rewrites that block, which must not carry instrument 0's bar along.
            var tooBig = new byte[17 * 1024 * 1024];
            Assert.That(() => store.Write(Minute([0], 1), [(0, tooBig)]), Throws.InstanceOf<LiteException>());
            store.Write(Minute([1], 1), []);
            Assert.That(All(store, Key(0)), Is.EqualTo(Expected(0, [0])));
            Assert.That(All(store, Key(1)), Is.EqualTo(Expected(1, [0, 1])));
        }

        using (var store = CandleStore.Open(_path))
        {
            Assert.That(All(store, Key(0)), Is.EqualTo(Expected(0, [0])), "not in the file either");
        }
    }

    [Test]
    public void Write_AcrossAPeriodsEnd_FillsBothBlocks()
    {
        using (var store = CandleStore.Open(_path))
        {
            store.Write(Minute([0, 1], 13), []);

            // Minutes 14 and 15 in one flush (a late flush, a backfill): the newest block is still to be written when
            // the next period starts, so its array must not be reused for it.
            store.Write([.. Minute([0, 1], 14), .. Minute([0, 1], 15)], []);
            Assert.That(All(store, Key(1)), Is.EqualTo(Expected(1, [13, 14, 15])));
            store.Write(Minute([0, 1], 16), []);
        }

        Assert.That(Documents()["bar_blocks_1m"], Is.EqualTo(2));
        using (var store = CandleStore.Open(_path))
        {
            Assert.That(All(store, Key(0)), Is.EqualTo(Expected(0, [13, 14, 15, 16])));
        }
    }

    [Test]
    public void Forming_RoundTripsEveryField_AndChunksPastTheLastAreDeleted()
    {
        var bars = new Bar[CandleIntervals.Count];
        bars[0] = new Bar { StartUs = 1_764_560_100_000_000, EndUs = 1_764_560_160_000_000, Open = 1450.5, High = 1452.25, Low = 1449.05, Close = 1451, Volume = 12_345, Forming = true };
        bars[4] = new Bar { StartUs = 1_764_560_000_000_000, EndUs = 1_764_582_600_000_000, Open = 1440, High = 1460, Low = 1430.5, Close = 1451, Volume = 9_876_543, Forming = false };
        var none = new Bar[CandleIntervals.Count];
        var pack = new byte[8]; // grows as it is filled
        var length = 0;
        CandleStore.AppendForming(ref pack, ref length, "NSE_EQ|INE002A01018", bars, 9_876_543, 20_424);
        CandleStore.AppendForming(ref pack, ref length, "NSE_EQ|ÄÖ→✓", none, 77, 20_424);
        var first = pack.AsSpan(0, length).ToArray();
        length = 0;
        CandleStore.AppendForming(ref pack, ref length, "NSE_EQ|INE467B01029", none, 5, 20_423);

        var path = Path.Combine(_folder, "candles.db");
        using (var store = CandleStore.Open(path))
        {
            store.Write([], [(0, first), (1, pack.AsSpan(0, length).ToArray())]);
        }

        using (var store = CandleStore.Open(path))
        {
            var loaded = store.LoadForming().ToDictionary(f => f.Key);
            Assert.That(loaded.Keys, Is.EquivalentTo(new[] { "NSE_EQ|INE002A01018", "NSE_EQ|ÄÖ→✓", "NSE_EQ|INE467B01029" }));
            var reliance = loaded["NSE_EQ|INE002A01018"];
            Assert.That(reliance.Bars, Is.EqualTo(bars), "every bar field, and the intervals without a bar stay empty");
            Assert.That((reliance.CumulativeVolume, reliance.VolumeDay), Is.EqualTo((9_876_543L, 20_424)));
            Assert.That(loaded["NSE_EQ|ÄÖ→✓"].Bars.All(b => !b.Exists), Is.True);
            Assert.That(loaded["NSE_EQ|ÄÖ→✓"].CumulativeVolume, Is.EqualTo(77));

            // The instrument list shrank to one chunk: rewriting it drops chunk 1.
            store.Write([], [(0, first)], formingChunks: 1);
            Assert.That(store.LoadForming().Select(f => f.Key), Is.EquivalentTo(new[] { "NSE_EQ|INE002A01018", "NSE_EQ|ÄÖ→✓" }));
        }
    }
}
