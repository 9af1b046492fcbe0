using System.Buffers.Binary;
using PriceDaemon.Storage;

namespace PriceDaemon.Tests.Storage;

/// <summary>
/// The packed binary blocks of stored prices: every field round-trips, blocks split where they should and keep
/// their arrays from pack to pack, and bytes that do not parse are refused.
/// </summary>
public sealed class PackedPricesTests
{
    private static readonly StoredPrice Reliance = new("NSE_EQ|INE002A01018", 2451.5, 15_000, 1_768_818_600_123_456, 0.03, 2450.75, 42, "simulated");

    // One version byte, then per price 2 + 19 (key) + 48 + 1 + 9 ("simulated") bytes.
    private const int RelianceEntryBytes = 2 + 19 + 48 + 1 + 9;

    [Test]
    public void PackThenRead_ReturnsEveryFieldOfEveryPrice()
    {
        var prices = Prices(
            Reliance,
            Reliance with { Key = "NSE_EQ|INE467B01029", LastPrice = 0.05, Volume = long.MaxValue, TimestampUs = long.MinValue, Seq = 0, Source = "live" },
            Reliance with { Key = "BSE_EQ|ÄÖÜ-₹-😀", ChangePercent = -99.99, PreviousClose = double.Epsilon, Seq = long.MaxValue, Source = "" },
            Reliance with { Key = new string('K', 3_000), ChangePercent = double.NaN, Source = new string('s', 255) });

        var blocks = new PackedPrices(1024 * 1024);
        blocks.Pack(prices);

        Assert.That(blocks.Count, Is.EqualTo(1));
        Assert.That(PackedPrices.Read(blocks[0]), Is.EqualTo(prices.Values));
    }

    [Test]
    public void Pack_SplitsIntoBlocksOfAtMostTheLimit_InTheDictionarysOrder()
    {
        var prices = Prices([.. Enumerable.Range(0, 10).Select(i => Reliance with { Key = $"NSE_EQ|SYN{i:D9}", Seq = i })]);
        var blocks = new PackedPrices(1 + (3 * RelianceEntryBytes));

        blocks.Pack(prices);

        Assert.That(blocks.Count, Is.EqualTo(4));
        Assert.That(Enumerable.Range(0, 4).Select(b => blocks[b].Length), Is.EqualTo(new[] { 1 + (3 * RelianceEntryBytes), 1 + (3 * RelianceEntryBytes), 1 + (3 * RelianceEntryBytes), 1 + RelianceEntryBytes }));
        Assert.That(Enumerable.Range(0, 4).SelectMany(b => PackedPrices.Read(blocks[b])), Is.EqualTo(prices.Values));
    }

    [Test]
    public void Pack_APriceLargerThanTheLimit_TakesABlockOfItsOwn()
    {
        var prices = Prices(Reliance, Reliance with { Key = new string('K', 500) }, Reliance with { Key = "NSE_EQ|INE467B01029" });
        var blocks = new PackedPrices(100);

        blocks.Pack(prices);

        Assert.That(Enumerable.Range(0, blocks.Count).Select(b => PackedPrices.Read(blocks[b]).Count), Is.EqualTo(new[] { 1, 1, 1 }));
    }

    [Test]
    public void Pack_AgainWithTheSameSizes_RewritesTheSameArrays_AndLeavesNothingOfThePreviousPrices()
    {
        var prices = Prices(Reliance, Reliance with { Key = "NSE_EQ|INE467B01029", Source = "replay" });
        var blocks = new PackedPrices(1024);
        blocks.Pack(prices);
        var array = blocks[0];

        // New values, same sizes ("replay" and "stored" are both six bytes).
        prices[Reliance.Key] = Reliance with { LastPrice = 2452.05, Volume = 15_100, Seq = 43 };
        prices["NSE_EQ|INE467B01029"] = prices["NSE_EQ|INE467B01029"] with { Source = "stored", Seq = 9 };
        blocks.Pack(prices);

        Assert.That(blocks[0], Is.SameAs(array));
        Assert.That(PackedPrices.Read(blocks[0]), Is.EqualTo(prices.Values));
    }

    [Test]
    public void Pack_WhenABlockChangesSize_ReplacesOnlyThatBlocksArray_AndDropsBlocksNoLongerNeeded()
    {
        var prices = Prices([.. Enumerable.Range(0, 4).Select(i => Reliance with { Key = $"NSE_EQ|SYN{i:D9}" })]);
        var blocks = new PackedPrices(1 + (2 * RelianceEntryBytes));
        blocks.Pack(prices);
        var (first, second) = (blocks[0], blocks[1]);

        prices["NSE_EQ|SYN000000003"] = prices["NSE_EQ|SYN000000003"] with { Source = "live" };
        blocks.Pack(prices);
        Assert.That(blocks[0], Is.SameAs(first));
        Assert.That(blocks[1], Is.Not.SameAs(second));
        Assert.That(PackedPrices.Read(blocks[1]).Select(static p => p.Source), Is.EqualTo(new[] { "simulated", "live" }));

        blocks.Pack(Prices(Reliance));
        Assert.That(blocks.Count, Is.EqualTo(1));
        Assert.That(PackedPrices.Read(blocks[0]), Is.EqualTo(new[] { Reliance }));
    }

    [Test]
    public void Pack_NoPrices_MakesNoBlock()
    {
        var blocks = new PackedPrices(1024);
        blocks.Pack(Prices(Reliance));

        blocks.Pack([]);

        Assert.That(blocks.Count, Is.Zero);
    }

    [Test]
    public void Pack_ASourceNameTooLongToStore_Throws()
    {
        Assert.Throws<ArgumentException>(() => new PackedPrices(1024).Pack(Prices(Reliance with { Source = new string('s', 256) })));
    }

    [Test]
    public void Read_RefusesAnotherVersion_AnEmptyBlock_ATruncatedEntry_AndBytesThatAreNotUtf8()
    {
        var blocks = new PackedPrices(1024);
        blocks.Pack(Prices(Reliance));
        var packed = blocks[0];

        var otherVersion = packed.ToArray();
        otherVersion[0] = PackedPrices.Version + 1;
        var notUtf8 = packed.ToArray();
        notUtf8[3] = 0xFF; // inside the key

        Assert.Multiple(() =>
        {
            Assert.Throws<InvalidDataException>(() => PackedPrices.Read(otherVersion));
            Assert.Throws<InvalidDataException>(() => PackedPrices.Read([]));
            for (var length = 2; length < packed.Length; length++)
            {
                Assert.Throws<InvalidDataException>(() => PackedPrices.Read(packed.AsSpan(0, length)), $"cut at {length} of {packed.Length} bytes");
            }

            Assert.Throws<InvalidDataException>(() => PackedPrices.Read(notUtf8));
        });
    }

    [Test]
    public void Pack_LaysOutTheVersionThenTheKeyLengthFirst_LittleEndian()
    {
        // The layout is a file format: pinned here so a change to it is a deliberate one (with a new version).
        var blocks = new PackedPrices(1024);
        blocks.Pack(Prices(Reliance));
        var packed = blocks[0];

        Assert.That(packed, Has.Length.EqualTo(1 + RelianceEntryBytes));
        Assert.That(packed[0], Is.EqualTo(PackedPrices.Version));
        Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(packed.AsSpan(1)), Is.EqualTo(19));
        Assert.That(BinaryPrimitives.ReadDoubleLittleEndian(packed.AsSpan(1 + 2 + 19)), Is.EqualTo(2451.5));
        Assert.That(BinaryPrimitives.ReadInt64LittleEndian(packed.AsSpan(1 + 2 + 19 + 40)), Is.EqualTo(42));
        Assert.That(packed[1 + 2 + 19 + 48], Is.EqualTo(9));
    }

    private static Dictionary<string, StoredPrice> Prices(params StoredPrice[] prices) => prices.ToDictionary(static p => p.Key);
}
