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

    // Variants built on first need, never on the tick path: the stale copy (a snapshot or REST answer while the feed is
    // down) and the timed bytes (a socket that asked for timing). One field for both keeps the frame the throttle
    // allocates per update at its size. Two threads may race to build one; the first stored wins.
    private Variants? _variants;

    /// <summary>The same price labelled <c>"stale": true</c>, so a cached price never pretends to be live.</summary>
    public PriceFrame AsStale()
    {
        if (Stale)
        {
            return this;
        }

        var variants = GetVariants();
        return Volatile.Read(ref variants.Stale) ?? Interlocked.CompareExchange(ref variants.Stale, FrameEncoder.WithStale(this), null) ?? variants.Stale;
    }

    /// <summary>
    /// The frame's bytes with <c>data.received_at</c>, the wall-clock time the daemon received the tick; the plain bytes
    /// when that was not measured (a price restored from storage). Built once, so every timing socket gets the same bytes
    /// (the receive time is derived from the clock at build time, which would differ by microseconds between builders).
    /// </summary>
    public byte[] TimedUtf8(TimeProvider time)
    {
        if (ReceivedTimestamp == 0)
        {
            return Utf8;
        }

        var variants = GetVariants();
        if (Volatile.Read(ref variants.Timed) is { } timed)
        {
            return timed;
        }

        // The receive time is a monotonic timestamp: its wall-clock time is now minus its age.
        var receivedUs = (time.GetUtcNow().UtcTicks - DateTime.UnixEpoch.Ticks - time.GetElapsedTime(ReceivedTimestamp).Ticks) / 10;
        var built = FrameEncoder.WithReceivedAt(this, receivedUs);
        return Interlocked.CompareExchange(ref variants.Timed, built, null) ?? built;
    }

    private Variants GetVariants() =>
        Volatile.Read(ref _variants) ?? Interlocked.CompareExchange(ref _variants, new Variants(), null) ?? _variants!;

    private sealed class Variants
    {
        public PriceFrame? Stale;
        public byte[]? Timed;
    }
}
