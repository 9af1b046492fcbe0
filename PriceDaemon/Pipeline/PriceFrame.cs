using PriceDaemon.Feeds;

namespace PriceDaemon.Pipeline;

/// <summary>
/// One emitted price update, serialized once. Immutable: the same instance (and the same
/// <see cref="StreamFrame.Utf8"/> bytes) is handed to every subscriber's send queue, the cache and storage.
/// </summary>
public sealed class PriceFrame : StreamFrame
{
    internal PriceFrame(
        int instrumentId,
        long seq,
        double lastPrice,
        long volume,
        long timestampUs,
        double changePercent,
        double previousClose,
        PriceSource source,
        bool stale,
        long receivedTimestamp,
        byte[] utf8)
        : base(seq, receivedTimestamp, utf8)
    {
        InstrumentId = instrumentId;
        LastPrice = lastPrice;
        Volume = volume;
        TimestampUs = timestampUs;
        ChangePercent = changePercent;
        PreviousClose = previousClose;
        Source = source;
        Stale = stale;
    }

    public int InstrumentId { get; }

    public double LastPrice { get; }

    public long Volume { get; }

    /// <summary>Trade time, Unix microseconds UTC.</summary>
    public long TimestampUs { get; }

    public double ChangePercent { get; }

    /// <summary>The close <see cref="ChangePercent"/> is measured against; stored so it survives restarts.</summary>
    public double PreviousClose { get; }

    public PriceSource Source { get; }

    /// <summary>The bytes carry <c>"stale": true</c>: a stored price, or a cached one served while the feed is down.</summary>
    public bool Stale { get; }

    // Built on first need (a snapshot or REST answer while the feed is down), never on the tick path. Two
    // threads may race to build it; both results are equal, so the lost one is only garbage.
    private PriceFrame? _stale;

    /// <summary>The same price labelled <c>"stale": true</c>, so a cached price never pretends to be live.</summary>
    public PriceFrame AsStale() => Stale ? this : Volatile.Read(ref _stale) ?? (_stale = FrameEncoder.WithStale(this));
}
