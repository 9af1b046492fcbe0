using System.Text;
using PriceDaemon.Benchmarks.EndToEnd;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Tests.Benchmarks;

public sealed class PriceUpdateScannerTests
{
    [Test]
    public void TryScan_ReadsTheDaemonsOwnFrame()
    {
        var instrument = new Instrument(0, "NSE_EQ|INE002A01018", "RELIANCE", "Reliance", 2450);
        var timeUs = 1_768_818_600_123_456L;
        var frame = new FrameEncoder(microseconds: true).Encode(instrument, new Tick(0, 2451.55, 15_000, timeUs, 0, PriceSource.Simulated), 42, 2450);

        Assert.That(PriceUpdateScanner.Classify(frame.Utf8.Span), Is.EqualTo(ServerMessageKind.PriceUpdate));
        Assert.That(PriceUpdateScanner.TryScan(frame.Utf8.Span, out var update), Is.True);
        Assert.That(
            (Encoding.UTF8.GetString(update.InstrumentKey), update.LastPrice, update.TimestampUs, update.Seq),
            Is.EqualTo(("NSE_EQ|INE002A01018", 2451.55, timeUs, 42L)));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void TryScan_ReadsTheDaemonsDepthAndBookFrames_WithTheBestBidAsPrice(bool full)
    {
        var instrument = new Instrument(0, "NSE_EQ|INE002A01018", "RELIANCE", "Reliance", 2450);
        var timeUs = 1_768_818_600_123_456L;
        var book = new DepthBook(0, [new DepthLevel(2451.45, 120, 3)], [new DepthLevel(2451.6, 80, 2)], timeUs, 0, PriceSource.Simulated);
        var frame = new DepthEncoder(microseconds: true).Encode(instrument, book, 7, full);

        Assert.That(PriceUpdateScanner.Classify(frame.Utf8.Span), Is.EqualTo(ServerMessageKind.PriceUpdate));
        Assert.That(PriceUpdateScanner.TryScan(frame.Utf8.Span, out var update), Is.True);
        Assert.That(
            (Encoding.UTF8.GetString(update.InstrumentKey), update.LastPrice, update.TimestampUs, update.Seq),
            Is.EqualTo(("NSE_EQ|INE002A01018", 2451.45, timeUs, 7L)));
        var empty = new DepthEncoder(microseconds: true).Encode(instrument, new DepthBook(0, [], [], timeUs, 0, PriceSource.Simulated), 8, full);
        Assert.That(PriceUpdateScanner.TryScan(empty.Utf8.Span, out var none), Is.True);
        Assert.That((none.LastPrice, none.Seq), Is.EqualTo((0.0, 8L)), "an empty side scans as price 0");
    }

    [Test]
    public void TryScan_ReturnsFalse_WhenAFieldIsMissing()
    {
        var json = """{"type":"price_update","instrument_key":"A","data":{"last_price":1.5,"timestamp":"2026-01-19T10:30:00.123Z"}}"""u8;
        Assert.That(PriceUpdateScanner.TryScan(json, out _), Is.False);
    }

    [Test]
    public void Classify_TellsSubscribedAckFromOtherMessages()
    {
        Assert.That(
            (PriceUpdateScanner.Classify("""{"type":"subscribed","action":"subscribe","instruments":[]}"""u8),
             PriceUpdateScanner.Classify("""{"type":"status","status":"connected"}"""u8)),
            Is.EqualTo((ServerMessageKind.Subscribed, ServerMessageKind.Other)));
    }

    [TestCase("2026-01-19T10:30:00.123Z", 1_768_818_600_123_000L)]
    [TestCase("2026-01-19T10:30:00.123456Z", 1_768_818_600_123_456L)]
    [TestCase("2026-01-19T10:30:00Z", 1_768_818_600_000_000L)]
    [TestCase("2024-02-29T23:59:59.9999999Z", 1_709_251_199_999_999L)]
    public void TryParseTimestamp_ReadsIsoUtc_ToUnixMicroseconds(string text, long expected)
    {
        Assert.That(PriceUpdateScanner.TryParseTimestamp(Encoding.ASCII.GetBytes(text), out var us), Is.True);
        Assert.That(us, Is.EqualTo(expected));
    }

    [TestCase("2026-01-19 10:30:00.123Z")]
    [TestCase("2026-02-30T10:30:00.123Z")]
    [TestCase("2026-01-19T10:30:00.123+01:00")]
    [TestCase("2026-01-19T10:30")]
    public void TryParseTimestamp_ReturnsFalse_ForOtherForms(string text)
    {
        Assert.That(PriceUpdateScanner.TryParseTimestamp(Encoding.ASCII.GetBytes(text), out _), Is.False);
    }

    [Test]
    public void TryParseTimestamp_ReusesTheMinute_ButStillChecksTheSeconds()
    {
        // The second and third share the first's minute; the fourth does not.
        string[] texts = ["2026-01-19T10:30:00.123Z", "2026-01-19T10:30:59.5Z", "2026-01-19T10:30:60Z", "2026-01-19T10:31:00Z"];
        var results = texts.Select(t => (PriceUpdateScanner.TryParseTimestamp(Encoding.ASCII.GetBytes(t), out var us), us)).ToArray();
        Assert.That(results, Is.EqualTo(new[] { (true, 1_768_818_600_123_000L), (true, 1_768_818_659_500_000L), (false, 0L), (true, 1_768_818_660_000_000L) }));
    }

    [TestCase("2451.55")]
    [TestCase("0.1")]
    [TestCase("1400")]
    [TestCase("123456789012.345")]
    [TestCase("1234567890123456.5")]
    [TestCase("1.5e3")]
    [TestCase("-12.25")]
    [TestCase("99999.99999")]
    public void TryParsePrice_AgreesWithTheGeneralParser(string text)
    {
        var utf8 = Encoding.ASCII.GetBytes(text + ",");
        Assert.That(PriceUpdateScanner.TryParsePrice(utf8, out var value), Is.True);
        Assert.That(value, Is.EqualTo(double.Parse(text, System.Globalization.CultureInfo.InvariantCulture)));
    }
}
