using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Http;

public sealed record ErrorBody(string Code, string Message);

public sealed record InstrumentBody(string InstrumentKey, string Symbol, string Name, double ReferencePrice);

/// <param name="Stale">True for a stored price, or a cached one while the feed is down; always written, so REST clients need no default.</param>
public sealed record PriceData(double LastPrice, string Timestamp, double ChangePercent, long Volume, long Seq, string Source, bool Stale);

public sealed record PriceBody(string InstrumentKey, PriceData Data);

/// <param name="Sockets">How many of the user's sockets it was queued on, on this daemon.</param>
public sealed record PublishResult(string Id, bool Duplicate, int Sockets);

/// <param name="Seq">The value's version: it only grows while the daemon runs.</param>
public sealed record TopicResult(string Topic, long Seq);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(InstrumentBody[]))]
[JsonSerializable(typeof(PriceBody))]
[JsonSerializable(typeof(PublishResult))]
[JsonSerializable(typeof(TopicResult))]
[JsonSerializable(typeof(Dictionary<string, PriceData>))]
public sealed partial class DaemonJsonContext : JsonSerializerContext
{
    /// <summary>Like <see cref="JsonSerializerContext"/>'s default, but keeps quotes and apostrophes readable in messages.</summary>
    public static DaemonJsonContext Relaxed { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}

/// <summary>Plain values of a cached price (see <see cref="PriceBodies.Copy"/>).</summary>
internal readonly record struct PriceValues(double LastPrice, long TimestampUs, double ChangePercent, long Volume, long Seq, PriceSource Source, bool Stale);

internal static class PriceBodies
{
    /// <summary>
    /// A cached frame's values, copied inside a read scope: the strings and objects of the answer are built from the
    /// copy after the scope (the frame is pooled; a scope held while allocating would hold back its reuse for longer).
    /// </summary>
    public static PriceValues Copy(PriceFrame frame) =>
        new(frame.LastPrice, frame.TimestampUs, frame.ChangePercent, frame.Volume, frame.Seq, frame.Source, frame.Stale);

    /// <param name="feedConnected">While the feed is down every cached price is served as stale.</param>
    public static PriceData Data(in PriceValues price, bool feedConnected)
    {
        Span<byte> timestamp = stackalloc byte[32];
        var length = FrameEncoder.WriteTimestamp(price.TimestampUs, false, timestamp);
        return new PriceData(
            price.LastPrice,
            Encoding.ASCII.GetString(timestamp[..length]),
            price.ChangePercent,
            price.Volume,
            price.Seq,
            Encoding.ASCII.GetString(FrameEncoder.SourceName(price.Source)),
            price.Stale || !feedConnected);
    }

    public static InstrumentBody Instrument(Instrument instrument) =>
        new(instrument.Key, instrument.Symbol, instrument.Name, instrument.ReferencePrice);

    public static string SourceName(PriceSource source) => Encoding.ASCII.GetString(FrameEncoder.SourceName(source));
}
