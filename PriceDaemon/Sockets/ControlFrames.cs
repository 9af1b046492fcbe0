using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using PriceDaemon.Feeds;

namespace PriceDaemon.Sockets;

/// <summary>Builds the rare, non-price frames: status, error and the subscription ack.</summary>
internal static class ControlFrames
{
    private static readonly JsonWriterOptions _options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string StatusName(FeedState state) => state switch
    {
        FeedState.Connected => "connected",
        FeedState.Disconnected => "disconnected",
        _ => "error",
    };

    public static byte[] Status(FeedState state, string message, string epoch) => Write(w =>
    {
        w.WriteString("type", "status");
        w.WriteString("status", StatusName(state));
        w.WriteString("message", message);
        w.WriteString("epoch", epoch);
    });

    public static byte[] Error(string code, string message, IReadOnlyCollection<string>? instruments = null) => Write(w =>
    {
        w.WriteString("type", "error");
        w.WriteString("code", code);
        w.WriteString("message", message);
        if (instruments is { Count: > 0 })
        {
            w.WriteStartArray("instruments");
            foreach (var key in instruments)
            {
                w.WriteStringValue(key);
            }

            w.WriteEndArray();
        }
    });

    public static byte[] Subscribed(string action, IEnumerable<string> subscribed, IReadOnlyList<(string Key, string Code)> rejected) => Write(w =>
    {
        w.WriteString("type", "subscribed");
        w.WriteString("action", action);
        w.WriteStartArray("instruments");
        foreach (var key in subscribed)
        {
            w.WriteStringValue(key);
        }

        w.WriteEndArray();
        w.WriteStartArray("rejected");
        foreach (var (key, code) in rejected)
        {
            w.WriteStartObject();
            w.WriteString("instrument_key", key);
            w.WriteString("code", code);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    });

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, _options))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
