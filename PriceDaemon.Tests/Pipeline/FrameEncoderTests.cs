using System.Text.Json;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Tests.Pipeline;

public sealed class FrameEncoderTests
{
    private static readonly Instrument Reliance = new(0, "NSE_EQ|INE002A01018", "RELIANCE", "Reliance Industries", 2450.80);

    [Test]
    public void Encode_WritesThePriceUpdateOfTheProtocol()
    {
        var tick = new Tick(0, 2451.5, 15000, 1_768_818_600_123_000, 0, PriceSource.Live);
        var frame = new FrameEncoder().Encode(Reliance, tick, 42, 2450.80);

        using var json = JsonDocument.Parse(frame.Utf8);
        var root = json.RootElement;
        Assert.That(root.GetProperty("type").GetString(), Is.EqualTo("price_update"));
        Assert.That(root.GetProperty("instrument_key").GetString(), Is.EqualTo("NSE_EQ|INE002A01018"));
        var data = root.GetProperty("data");
        Assert.That(data.GetProperty("last_price").GetDouble(), Is.EqualTo(2451.5));
        Assert.That(data.GetProperty("timestamp").GetString(), Is.EqualTo("2026-01-19T10:30:00.123Z"));
        Assert.That(data.GetProperty("change_percent").GetDouble(), Is.EqualTo(0.03));
        Assert.That(data.GetProperty("volume").GetInt64(), Is.EqualTo(15000));
        Assert.That(data.GetProperty("seq").GetInt64(), Is.EqualTo(42));
        Assert.That(data.GetProperty("source").GetString(), Is.EqualTo("live"));
    }

    [Test]
    public void Encode_WithMicroseconds_WritesSixFractionalDigits()
    {
        var tick = new Tick(0, 1, 1, 1_768_818_600_123_456, 0, PriceSource.Simulated);
        var frame = new FrameEncoder(microseconds: true).Encode(Reliance, tick, 1, 1);
        using var json = JsonDocument.Parse(frame.Utf8);
        var timestamp = json.RootElement.GetProperty("data").GetProperty("timestamp").GetString();
        Assert.That(timestamp, Is.EqualTo("2026-01-19T10:30:00.123456Z"));
        Assert.That(DateTimeOffset.Parse(timestamp!, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds(), Is.EqualTo(1_768_818_600_123));
    }

    [TestCase(100.0, 100.0, "0")]
    [TestCase(99.999, 100.0, "0")]
    [TestCase(97.5, 100.0, "-2.5")]
    public void Encode_ChangePercent_IsRoundedAndNeverNegativeZero(double price, double previousClose, string expected)
    {
        var frame = new FrameEncoder().Encode(Reliance, new Tick(0, price, 1, 0, 0, PriceSource.Live), 1, previousClose);
        Assert.That(System.Text.Encoding.UTF8.GetString(frame.Utf8.Span), Does.Contain($"\"change_percent\":{expected},"));
    }

    [Test]
    public void Encode_EscapesKeysThatNeedIt()
    {
        var odd = new Instrument(1, "NSE_EQ|\"QUOTE\"\\", "Q", "Quote", 1);
        var frame = new FrameEncoder().Encode(odd, new Tick(1, 1, 1, 0, 0, PriceSource.Replay), 1, 1);
        using var json = JsonDocument.Parse(frame.Utf8);
        Assert.That(json.RootElement.GetProperty("instrument_key").GetString(), Is.EqualTo("NSE_EQ|\"QUOTE\"\\"));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void TimedUtf8_AddsTheWallClockReceiveTime_AsTheLastFieldOfData_BuiltOnce(bool stale)
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 1, 19, 10, 30, 0, TimeSpan.Zero));
        var received = time.GetTimestamp();
        time.Advance(TimeSpan.FromTicks(2_500)); // the frame is 250 µs old when a timing socket first needs it
        var tick = new Tick(0, 2451.5, 15000, 1_768_818_599_990_000, received, PriceSource.Live);
        var frame = new FrameEncoder().Encode(Reliance, tick, 42, 2450.80, stale);

        var timed = frame.TimedUtf8(time);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(frame.TimedUtf8(time).Equals(timed), Is.True, "built once: every timing socket gets the same bytes");

        using var json = JsonDocument.Parse(timed);
        var data = json.RootElement.GetProperty("data");
        Assert.That(data.GetProperty("received_at").GetString(), Is.EqualTo("2026-01-19T10:30:00.000000Z"));
        Assert.That(data.EnumerateObject().Last().Name, Is.EqualTo("received_at"));
        Assert.That(data.TryGetProperty("stale", out _), Is.EqualTo(stale));
        using var plain = JsonDocument.Parse(frame.Utf8);
        Assert.That(plain.RootElement.GetProperty("data").TryGetProperty("received_at", out _), Is.False, "the frame other sockets get is unchanged");
        Assert.That(data.EnumerateObject().Count(), Is.EqualTo(plain.RootElement.GetProperty("data").EnumerateObject().Count() + 1));
    }

    [Test]
    public void TimedUtf8_OfAFrameWithNoReceiveTime_IsThePlainFrame()
    {
        var frame = new FrameEncoder().Encode(Reliance, new Tick(0, 2451.5, 15000, 1_768_818_600_123_000, 0, PriceSource.Stored), 1, 2450.80);
        Assert.That(frame.TimedUtf8(TimeProvider.System).Equals(frame.Utf8), Is.True, "the same bytes, not a copy");
    }
}
