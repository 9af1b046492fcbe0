using PriceDaemon.Feeds;

namespace PriceDaemon.Pipeline;

/// <summary>
/// One emitted price update, serialized once. Immutable: the same instance (and the same
/// <see cref="Utf8"/> bytes) is handed to every subscriber's send queue, the cache and storage.
/// </summary>
public sealed class PriceFrame
{
    internal PriceFrame(
        int instrumentId,
        long seq,
        double lastPrice,
        long volume,
        long timestampUs,
        double changePercent,
        PriceSource source,
        long receivedTimestamp,
        byte[] utf8)
    {
        InstrumentId = instrumentId;
        Seq = seq;
        LastPrice = lastPrice;
        Volume = volume;
        TimestampUs = timestampUs;
        ChangePercent = changePercent;
        Source = source;
        ReceivedTimestamp = receivedTimestamp;
        Utf8 = utf8;
    }

    public int InstrumentId { get; }

    /// <summary>Per-instrument version that only grows within an epoch.</summary>
    public long Seq { get; }

    public double LastPrice { get; }

    public long Volume { get; }

    /// <summary>Trade time, Unix microseconds UTC.</summary>
    public long TimestampUs { get; }

    public double ChangePercent { get; }

    public PriceSource Source { get; }

    /// <summary>When the daemon received the newest tick merged into this update (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    public long ReceivedTimestamp { get; }

    /// <summary>The complete <c>price_update</c> text frame.</summary>
    public byte[] Utf8 { get; }
}
