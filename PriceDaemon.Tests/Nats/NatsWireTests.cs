using PriceDaemon.Feeds;
using PriceDaemon.Nats;

namespace PriceDaemon.Tests.Nats;

/// <summary>The subject scheme and the binary tick layout, without a server.</summary>
public sealed class NatsWireTests
{
    [TestCase("NSE_EQ|INE002A01018", "prices.NSE_EQ.INE002A01018")]
    [TestCase("NSE_INDEX|Nifty 50", "prices.NSE_INDEX.Nifty=2050")]
    [TestCase("BSE_EQ|A.B*C>D", "prices.BSE_EQ.A=2EB=2AC=3ED")]
    [TestCase("MCX_FO|x=y", "prices.MCX_FO.x=3Dy")]
    [TestCase("NOSEGMENT", "prices.=.NOSEGMENT")]
    [TestCase("NSE_EQ|", "prices.NSE_EQ.=")]
    public void Subject_EscapesEachPartIntoOneValidToken_ForAnyKey(string key, string subject)
    {
        Assert.That(NatsSubjects.Subject(key), Is.EqualTo(subject));
        Assert.That(NatsSubjects.KvKey(key), Is.EqualTo(subject["prices.".Length..]));
        Assert.That(NatsSubjects.KvKey(key), Does.Match("^[-/_=.a-zA-Z0-9]+$"), "a valid key-value key");
    }

    [Test]
    public void Subject_KeepsDistinctKeysDistinct_WhenTheyDifferOnlyInEscapedCharacters()
    {
        string[] keys = ["NSE_EQ|A.B", "NSE_EQ|A B", "NSE_EQ|A=2EB", "NSE_EQ.A|B", "NSE_EQ|A|B"];
        Assert.That(keys.Select(NatsSubjects.Subject), Is.Unique);
    }

    [TestCase("prices.>", null)]
    [TestCase("prices.NSE_EQ.>", null)]
    [TestCase("prices.*.INE002A01018", null)]
    [TestCase("quotes.>", "must start with 'prices.'")]
    [TestCase("prices.>.x", "'>' the whole last token")]
    [TestCase("prices.NSE*.x", "'*' must be a whole token")]
    [TestCase("prices..x", "empty token")]
    public void SubjectFilter_IsValidated_WithAReason(string filter, string? problem)
    {
        Assert.That(NatsSubjects.Problem(filter), problem is null ? Is.Null : Does.Contain(problem));
    }

    [Test]
    public void TickCodec_RoundTripsEveryField_InFortyTwoBytes()
    {
        var tick = new Tick(3, 2451.55, 15_000, 1_768_818_600_123_456, 99, PriceSource.Live, 2400.1);
        var bytes = new byte[TickCodec.Size];
        TickCodec.Write(bytes, tick, 1_768_818_600_200_000);

        Assert.That(TickCodec.TryRead(bytes, out var wire), Is.True);
        Assert.That(wire, Is.EqualTo(new WireTick(2451.55, 15_000, 1_768_818_600_123_456, 2400.1, PriceSource.Live, 1_768_818_600_200_000)));
    }

    [Test]
    public void BookCodec_RoundTripsABook_AndRefusesABadOne()
    {
        var book = new DepthBook(3, [new DepthLevel(2451.45, 120, 3), new DepthLevel(2451.4, 7, 0)], [new DepthLevel(2451.6, 80, 2)], 1_768_795_200_123_456, 0, PriceSource.Live);
        var buffer = new byte[BookCodec.MaxSize];
        var length = BookCodec.Write(buffer, book, 99);

        Assert.That(length, Is.EqualTo(BookCodec.HeaderSize + (3 * BookCodec.LevelSize)));
        Assert.That(buffer[0], Is.EqualTo(2), "version 2: a v1 edge counts it malformed instead of misreading it as a tick");
        Assert.That(TickCodec.TryRead(buffer.AsSpan(0, length), out _), Is.False);
        Assert.That(BookCodec.TryRead(buffer.AsSpan(0, length), 3, 5, out var read, out var published), Is.True);
        Assert.That((read!.InstrumentId, read.ExchangeTimeUs, read.Source, read.ReceivedTimestamp, published), Is.EqualTo((3, book.ExchangeTimeUs, PriceSource.Live, 5L, 99L)));
        Assert.That(read.Bids, Is.EqualTo(book.Bids));
        Assert.That(read.Asks, Is.EqualTo(book.Asks));

        Assert.That(BookCodec.TryRead(buffer.AsSpan(0, length - 1), 3, 5, out _, out _), Is.False, "short");
        Array.Clear(buffer, BookCodec.HeaderSize, 8); // the first bid's price becomes 0
        Assert.That(BookCodec.TryRead(buffer.AsSpan(0, length), 3, 5, out _, out _), Is.False, "a zero price");
    }

    [Test]
    public void TickCodec_RefusesShortOtherVersionOrNonsensePayloads()
    {
        var bytes = new byte[TickCodec.Size];
        TickCodec.Write(bytes, new Tick(0, 100, 1, 1, 0, PriceSource.Simulated), 1);
        Assert.That(TickCodec.TryRead(bytes.AsSpan(0, TickCodec.Size - 1), out _), Is.False, "short");

        var otherVersion = (byte[])bytes.Clone();
        otherVersion[0] = 2;
        Assert.That(TickCodec.TryRead(otherVersion, out _), Is.False, "a newer layout");

        var badPrice = new byte[TickCodec.Size];
        TickCodec.Write(badPrice, new Tick(0, double.NaN, 1, 1, 0, PriceSource.Simulated), 1);
        Assert.That(TickCodec.TryRead(badPrice, out _), Is.False, "NaN price");
    }
}
