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
    public void AFileOfChunksOfPriceDocuments_IsRead_AndMovedToPackedBlocksByTheFirstWrite()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(DataFile)!);
        var prices = Enumerable.Range(0, 300)
            .Select(i => Reliance with { Key = $"NSE_EQ|SYN{i:D7}", LastPrice = 100 + i, Seq = i, Source = i % 2 == 0 ? "live" : "stored" })
            .ToArray();
        WriteChunksOfDocuments(prices);

        var newer = prices[0] with { LastPrice = 99.95, Seq = 1_000 };
        var (store, state) = PriceStore.Open(DataFile);
        using (store)
        {
            Assert.That(state.Prices, Is.EquivalentTo(prices));
            store.Write([newer]);
        }

        var (again, after) = PriceStore.Open(DataFile);
        using (again)
        {
            Assert.That(after.Prices, Is.EquivalentTo(prices.Skip(1).Append(newer)), "the untouched chunks moved too");
        }

        using var check = new LiteDB.LiteDatabase(new LiteDB.ConnectionString { Filename = DataFile, ReadOnly = true });
        var chunks = check.GetCollection("price_chunks").FindAll().ToList();
        Assert.That(chunks.Select(static c => (c["_id"].AsInt32, c["packed"].IsBinary, c["prices"].IsNull)), Is.EqualTo(new[] { (0, true, true) }), "one block of packed prices replaced every chunk");
    }

    [Test]
    public void Write_APriceWhoseSourceNameChangesLength_ThenMoreWritesOfTheSameSize_AllReadBack()
    {
        // A restart's prices are "stored" until live ticks replace them: the block's size changes once, then
        // stays, and the store rewrites its array in place from then on.
        var tcs = Reliance with { Key = "NSE_EQ|INE467B01029", LastPrice = 3890.1, Seq = 7, Source = "stored" };
        var (store, _) = PriceStore.Open(DataFile);
        using (store)
        {
            store.Write([Reliance with { Source = "stored" }, tcs]);
            store.Write([Reliance with { Source = "live", Seq = 43 }]);
            store.Write([Reliance with { Source = "live", Seq = 44, LastPrice = 2452 }]);
            store.Write([tcs with { Source = "simulated", Seq = 8 }, Reliance with { Source = "live", Seq = 45, LastPrice = 2452.5 }]);
        }

        var (again, state) = PriceStore.Open(DataFile);
        using (again)
        {
            Assert.That(state.Prices, Is.EquivalentTo(new[]
            {
                Reliance with { Source = "live", Seq = 45, LastPrice = 2452.5 },
                tcs with { Source = "simulated", Seq = 8 },
            }));
        }
    }

    [Test]
    public void PricesInSeveralBlocks_ReadBack_AndBlocksNoLongerNeededAreDeletedByTheNextWrite()
    {
        var prices = Enumerable.Range(0, 10).Select(i => Reliance with { Key = $"NSE_EQ|SYN{i:D7}", Seq = i }).ToArray();
        var (store, _) = PriceStore.Open(DataFile, maxBlockBytes: 200);
        using (store)
        {
            store.Write(prices);
        }

        Assert.That(ChunkDocumentIds(), Is.EqualTo(Enumerable.Range(0, 5)), "two prices of 77 bytes per block of at most 200");

        var newer = prices[9] with { Seq = 100 };
        var (again, state) = PriceStore.Open(DataFile);
        using (again)
        {
            Assert.That(state.Prices, Is.EqualTo(prices), "in the order written");
            again.Write([newer]);
        }

        Assert.That(ChunkDocumentIds(), Is.EqualTo(new[] { 0 }));
        var (last, after) = PriceStore.Open(DataFile);
        using (last)
        {
            Assert.That(after.Prices, Is.EqualTo(prices[..9].Append(newer)));
        }
    }

    [Test]
    public void APackedChunkOfAnotherVersion_IsRefusedAsDamaged_AndTheFileIsLeftAsItWas()
    {
        var (store, _) = PriceStore.Open(DataFile);
        using (store)
        {
            store.Write([Reliance]);
        }

        using (var db = new LiteDB.LiteDatabase(DataFile))
        {
            var chunks = db.GetCollection("price_chunks");
            var chunk = chunks.FindAll().Single();
            var packed = chunk["packed"].AsBinary;
            packed[0] = PackedPrices.Version + 1;
            chunk["packed"] = packed;
            chunks.Update(chunk);
        }

        var before = StorageHelpers.Sha256(DataFile);
        var error = Assert.Throws<StorageException>(() => PriceStore.Open(DataFile));
        Assert.That(error!.Message, Does.Contain("damaged").And.Contain("version"));
        Assert.That(StorageHelpers.Sha256(DataFile), Is.EqualTo(before));
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

    private int[] ChunkDocumentIds()
    {
        using var check = new LiteDB.LiteDatabase(new LiteDB.ConnectionString { Filename = DataFile, ReadOnly = true });
        return [.. check.GetCollection("price_chunks").FindAll().Select(static c => c["_id"].AsInt32)];
    }

    /// <summary>Chunks as the first chunked layout stored them: an array of one document per price in <c>prices</c>.</summary>
    private void WriteChunksOfDocuments(params StoredPrice[] prices)
    {
        using var db = new LiteDB.LiteDatabase(DataFile);
        var chunks = db.GetCollection("price_chunks");
        foreach (var chunk in prices.GroupBy(static p => PriceStore.ChunkOf(p.Key)))
        {
            var entries = new LiteDB.BsonArray(chunk.Select(static p => (LiteDB.BsonValue)new LiteDB.BsonDocument
            {
                ["key"] = p.Key, ["last_price"] = p.LastPrice, ["volume"] = p.Volume, ["timestamp_us"] = p.TimestampUs,
                ["change_percent"] = p.ChangePercent, ["previous_close"] = p.PreviousClose, ["seq"] = p.Seq, ["source"] = p.Source,
            }));
            chunks.Insert(new LiteDB.BsonDocument { ["_id"] = chunk.Key, ["prices"] = entries });
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
