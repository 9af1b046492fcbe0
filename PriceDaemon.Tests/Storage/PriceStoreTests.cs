using PriceDaemon.Storage;

namespace PriceDaemon.Tests.Storage;

/// <summary>The LiteDB file itself: round trips, refusing files it cannot read without touching them, the lock.</summary>
public sealed class PriceStoreTests
{
    private static readonly StoredPrice Reliance = new("NSE_EQ|INE002A01018", 2451.5, 15_000, 1_768_818_600_123_456, 0.03, 2450.75, 42, "simulated");

    private string _folder = null!;

    private string DataFile => Path.Combine(_folder, "data", "prices.db");

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("pricedaemon-store-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    [Test]
    public void Open_NewFile_CreatesFolderAndStartsEmpty()
    {
        var (store, state) = PriceStore.Open(DataFile);
        using (store)
        {
            Assert.That(state.Epoch, Is.Null);
            Assert.That(state.CleanShutdown, Is.False);
            Assert.That(state.Prices, Is.Empty);
            Assert.That(File.Exists(DataFile), Is.True);
        }
    }

    [Test]
    public void Write_ThenOpen_ReadsBackEveryFieldAndTheState()
    {
        var newer = Reliance with { LastPrice = 2452.05, Volume = 15_100, Seq = 43 };
        var (store, _) = PriceStore.Open(DataFile);
        using (store)
        {
            store.Write([Reliance]);
            store.Write([newer]);
            store.WriteState("0123abcd", cleanShutdown: true);
        }

        var (again, state) = PriceStore.Open(DataFile);
        using (again)
        {
            Assert.That(state.Prices, Is.EqualTo(new[] { newer }));
            Assert.That(state.Epoch, Is.EqualTo("0123abcd"));
            Assert.That(state.CleanShutdown, Is.True);
        }
    }

    [Test]
    public void ManyInstruments_WrittenInPartsAcrossSeveralFlushes_AllReadBack()
    {
        var prices = Enumerable.Range(0, 2_000)
            .Select(i => Reliance with { Key = $"NSE_EQ|SYN{i:D7}", LastPrice = 100 + i, Seq = i })
            .ToArray();
        var (store, _) = PriceStore.Open(DataFile);
        using (store)
        {
            store.Write(prices);
            // A later flush carries only what changed; the rest of each chunk it rewrites must survive.
            store.Write([.. prices.Where((_, i) => i % 7 == 0).Select(p => p with { LastPrice = p.LastPrice + 0.05, Seq = p.Seq + 10_000 })]);
        }

        var (again, state) = PriceStore.Open(DataFile);
        using (again)
        {
            var read = state.Prices.ToDictionary(p => p.Key);
            Assert.That(read, Has.Count.EqualTo(2_000));
            for (var i = 0; i < prices.Length; i++)
            {
                var expected = i % 7 == 0 ? prices[i] with { LastPrice = prices[i].LastPrice + 0.05, Seq = prices[i].Seq + 10_000 } : prices[i];
                Assert.That(read[prices[i].Key], Is.EqualTo(expected));
            }
        }
    }

    [Test]
    public void AFileOfTheOneDocumentPerInstrumentLayout_IsRead_AndMovedToChunksByTheFirstWrite()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(DataFile)!);
        var tcs = Reliance with { Key = "NSE_EQ|INE467B01029", LastPrice = 3890.1, Seq = 7 };
        WriteOldLayoutRows(Reliance, tcs);

        var newer = Reliance with { LastPrice = 2460, Seq = 43 };
        var (store, state) = PriceStore.Open(DataFile);
        using (store)
        {
            Assert.That(state.Prices, Is.EquivalentTo(new[] { Reliance, tcs }));
            store.Write([newer]);
        }

        var (again, after) = PriceStore.Open(DataFile);
        using (again)
        {
            Assert.That(after.Prices, Is.EquivalentTo(new[] { newer, tcs }), "the untouched instrument moved too");
        }

        using var check = new LiteDB.LiteDatabase(new LiteDB.ConnectionString { Filename = DataFile, ReadOnly = true });
        Assert.That(check.GetCollection("prices").Count(), Is.Zero, "the old rows are gone once moved");
    }

    [Test]
    public void RowsOfTheOldLayoutBesideChunks_AreTheNewerPrices()
    {
        // Only an older version, run on the file after the move, writes old-layout rows beside chunks.
        var (store, _) = PriceStore.Open(DataFile);
        using (store)
        {
            store.Write([Reliance]);
        }

        var downgraded = Reliance with { LastPrice = 2470, Seq = 3 };
        WriteOldLayoutRows(downgraded);

        var (again, state) = PriceStore.Open(DataFile);
        using (again)
        {
            Assert.That(state.Prices, Is.EqualTo(new[] { downgraded }));
        }
    }

    [Test]
    public void AChunkOutsideTheLayout_IsRefusedAsDamaged_AndTheFileIsLeftAsItWas()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(DataFile)!);
        using (var db = new LiteDB.LiteDatabase(DataFile))
        {
            db.GetCollection("price_chunks").Insert(new LiteDB.BsonDocument { ["_id"] = 64, ["prices"] = new LiteDB.BsonArray() });
        }

        var before = StorageHelpers.Sha256(DataFile);
        var error = Assert.Throws<StorageException>(() => PriceStore.Open(DataFile));
        Assert.That(error!.Message, Does.Contain("damaged"));
        Assert.That(StorageHelpers.Sha256(DataFile), Is.EqualTo(before));
    }

    [TestCase("text")]
    [TestCase("random")]
    [TestCase("damaged")]
    public void Open_RefusesAFileItCannotRead_AndLeavesItByteForByte(string kind)
    {
        StorageHelpers.WriteBadDataFile(DataFile, kind);
        var before = StorageHelpers.Sha256(DataFile);

        var error = Assert.Throws<StorageException>(() => PriceStore.Open(DataFile));

        Assert.That(error!.Message, Does.StartWith("Storage:Path: cannot use").And.Contain("left untouched"));
        Assert.That(StorageHelpers.Sha256(DataFile), Is.EqualTo(before));
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(DataFile)!).Select(Path.GetFileName), Is.EquivalentTo(new[] { "prices.db", "prices.db.lock" }), "no LiteDB log file was created");
    }

    [Test]
    public void Open_RefusesASecondStore_UntilTheFirstIsDisposed()
    {
        var (first, _) = PriceStore.Open(DataFile);
        using (first)
        {
            var error = Assert.Throws<StorageException>(() => PriceStore.Open(DataFile));
            Assert.That(error!.Message, Does.Contain("in use by another PriceDaemon"));
            first.Write([Reliance]);
        }

        var (again, state) = PriceStore.Open(DataFile);
        using (again)
        {
            Assert.That(state.Prices, Is.EqualTo(new[] { Reliance }));
        }
    }

    /// <summary>Rows as earlier versions stored them: one document per instrument, the key as its _id.</summary>
    private void WriteOldLayoutRows(params StoredPrice[] prices)
    {
        using var db = new LiteDB.LiteDatabase(DataFile);
        var rows = db.GetCollection("prices");
        foreach (var p in prices)
        {
            rows.Insert(new LiteDB.BsonDocument
            {
                ["_id"] = p.Key, ["last_price"] = p.LastPrice, ["volume"] = p.Volume, ["timestamp_us"] = p.TimestampUs,
                ["change_percent"] = p.ChangePercent, ["previous_close"] = p.PreviousClose, ["seq"] = p.Seq, ["source"] = p.Source,
            });
        }
    }
}
