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

internal static class PriceBodies
{
    /// <param name="feedConnected">While the feed is down every cached price is served as stale.</param>
    public static PriceData Data(PriceFrame frame, bool feedConnected)
    {
        Span<byte> timestamp = stackalloc byte[32];
        var length = FrameEncoder.WriteTimestamp(frame.TimestampUs, false, timestamp);
        return new PriceData(
            frame.LastPrice,
            Encoding.ASCII.GetString(timestamp[..length]),
            frame.ChangePercent,
            frame.Volume,
            frame.Seq,
            Encoding.ASCII.GetString(FrameEncoder.SourceName(frame.Source)),
            frame.Stale || !feedConnected);
    }

    public static InstrumentBody Instrument(Instrument instrument) =>
        new(instrument.Key, instrument.Symbol, instrument.Name, instrument.ReferencePrice);

    public static string SourceName(PriceSource source) => Encoding.ASCII.GetString(FrameEncoder.SourceName(source));
}
