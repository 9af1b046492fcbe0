using System.Buffers;
using System.Diagnostics;
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

    /// <summary>The socket stays behind: prices now come at most once per <paramref name="intervalMs"/> per instrument.</summary>
    public static byte[] SlowConsumerWarning(int intervalMs) => Write(w =>
    {
        w.WriteString("type", "warning");
        w.WriteString("code", ErrorCodes.SlowConsumer);
        w.WriteString("message", $"this connection is not keeping up; prices are sent at most once per {intervalMs} ms per instrument until it does");
        w.WriteNumber("interval_ms", intervalMs);
    });

    /// <summary>The end of a <see cref="SlowConsumerWarning"/>: the socket keeps up and is back to full rate.</summary>
    public static byte[] SlowConsumerCleared() => Write(static w =>
    {
        w.WriteString("type", "warning_cleared");
        w.WriteString("code", ErrorCodes.SlowConsumer);
        w.WriteString("message", "this connection keeps up again; prices are sent at full rate");
    });

    public static byte[] Subscribed(string action, IEnumerable<string> subscribed, IReadOnlyList<(string Key, string Code)> rejected) =>
        Ack(action, channel: null, "instruments", subscribed, "instrument_key", rejected);

    /// <summary>
    /// The answer to a subscribe or unsubscribe on any channel: what the connection holds after it (under
    /// <paramref name="listName"/>), and what was refused with why (each named by <paramref name="rejectedKeyName"/>).
    /// A channel with intervals (candles) names the one the message was about in <paramref name="interval"/>.
    /// </summary>
    public static byte[] Ack(string action, string? channel, string listName, IEnumerable<string> held, string rejectedKeyName, IReadOnlyList<(string Key, string Code)> rejected, string? interval = null) => Write(w =>
    {
        w.WriteString("type", "subscribed");
        w.WriteString("action", action);
        if (channel is not null)
        {
            w.WriteString("channel", channel);
        }

        if (interval is not null)
        {
            w.WriteString("interval", interval);
        }

        w.WriteStartArray(listName);
        foreach (var key in held)
        {
            w.WriteStringValue(key);
        }

        w.WriteEndArray();
        w.WriteStartArray("rejected");
        foreach (var (key, code) in rejected)
        {
            w.WriteStartObject();
            w.WriteString(rejectedKeyName, key);
            w.WriteString("code", code);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    });

    /// <summary>
    /// <paramref name="frame"/> with <c>"req":</c> the client's request id added as its last field (the frame itself when
    /// there is none), so a client with several requests in flight matches each answer or error to its request, not by
    /// order. The frame stays the one its builder wrote: the alert frames are shared with HTTP, where there is no req.
    /// </summary>
    public static byte[] WithReq(byte[] frame, string? req)
    {
        if (req is null)
        {
            return frame;
        }

        // Every control frame is one object with at least its type, so the field goes before the closing brace after a comma.
        Debug.Assert(frame.Length > 2 && frame[^1] == (byte)'}', "a control frame is a non-empty JSON object");
        var value = JsonEncodedText.Encode(req, _options.Encoder).EncodedUtf8Bytes;
        var field = ",\"req\":\""u8;
        var result = new byte[frame.Length - 1 + field.Length + value.Length + 2];
        frame.AsSpan(0, frame.Length - 1).CopyTo(result);
        var at = frame.Length - 1;
        field.CopyTo(result.AsSpan(at));
        at += field.Length;
        value.CopyTo(result.AsSpan(at));
        at += value.Length;
        result[at] = (byte)'"';
        result[at + 1] = (byte)'}';
        return result;
    }

    /// <summary>One JSON object, written by <paramref name="body"/>, with the daemon's relaxed escaping: every control frame.</summary>
    internal static byte[] Write(Action<Utf8JsonWriter> body)
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
