using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace PriceDaemon.Candles;

/// <summary>
/// The candle channel's frames: <c>candle</c> (one bar, forming or closed) and <c>candles</c> (history). Not thread-safe:
/// one writer per thread (the service's for <c>candle</c>, a fresh one per subscribe for <c>candles</c>).
/// </summary>
internal sealed class CandleFrames
{
    private static readonly JsonWriterOptions _options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly ArrayBufferWriter<byte> _buffer = new(256);
    private readonly Utf8JsonWriter _writer;

    public CandleFrames()
    {
        _writer = new Utf8JsonWriter(_buffer, _options);
    }

    /// <summary><c>{"type":"candle","instrument_key":..,"interval":"1m","seq":n,"data":{"t":..,"o":..,"h":..,"l":..,"c":..,"v":..,"closed":false}}</c>.</summary>
    public byte[] Candle(string instrumentKey, int interval, long seq, in Bar bar)
    {
        var w = Begin("candle", instrumentKey, interval);
        w.WriteNumber("seq", seq);
        w.WritePropertyName("data");
        WriteBar(w, bar, closedFlag: true);
        return End();
    }

    /// <summary><c>{"type":"candles","instrument_key":..,"interval":"1m","data":[{"t":..,"o":..,...},...]}</c>, oldest first.</summary>
    public byte[] History(string instrumentKey, int interval, IReadOnlyList<Bar> bars)
    {
        var w = Begin("candles", instrumentKey, interval);
        w.WriteStartArray("data");
        foreach (var bar in bars)
        {
            WriteBar(w, bar, closedFlag: false);
        }

        w.WriteEndArray();
        return End();
    }

    /// <summary>One bar as an object: <c>t</c> is the bar's start (ISO 8601 UTC); <c>closed</c> only when asked.</summary>
    public static void WriteBar(Utf8JsonWriter w, in Bar bar, bool closedFlag)
    {
        w.WriteStartObject();
        w.WriteString("t", Time(bar.StartUs));
        w.WriteNumber("o", bar.Open);
        w.WriteNumber("h", bar.High);
        w.WriteNumber("l", bar.Low);
        w.WriteNumber("c", bar.Close);
        w.WriteNumber("v", bar.Volume);
        if (closedFlag)
        {
            w.WriteBoolean("closed", !bar.Forming);
        }

        w.WriteEndObject();
    }

    public static DateTime Time(long unixUs) => DateTime.UnixEpoch.AddTicks(unixUs * 10);

    private Utf8JsonWriter Begin(string type, string instrumentKey, int interval)
    {
        _buffer.ResetWrittenCount();
        _writer.Reset();
        _writer.WriteStartObject();
        _writer.WriteString("type", type);
        _writer.WriteString("instrument_key", instrumentKey);
        _writer.WriteString("interval", CandleIntervals.Names[interval]);
        return _writer;
    }

    private byte[] End()
    {
        _writer.WriteEndObject();
        _writer.Flush();
        return _buffer.WrittenSpan.ToArray();
    }
}
