using PriceDaemon.Feeds;

namespace PriceDaemon.Pipeline;

/// <summary>
/// One emitted price update, serialized once. The same instance (and the same <see cref="StreamFrame.Utf8"/> bytes)
/// is read by every subscriber's send pass, the cache and storage.
/// <para>
/// Lifetime. A frame the throttle emits comes from its <see cref="PriceFramePool"/> and is refilled with another
/// price once the cache has replaced it and its grace period is over. So a frame read from the
/// <see cref="PriceCache"/> is valid only inside the <see cref="FrameReadScope"/> it was read in
/// (<c>using var scope = cache.Read();</c>): copy its bytes or fields out before the scope ends, and never keep the
/// reference in a field, a list or across an <c>await</c> (the scope is a <c>ref struct</c>: the compiler refuses
/// the last). The variants (<see cref="AsStale"/>, <see cref="TimedUtf8"/>) and frames made by
/// <see cref="FrameEncoder.Encode"/> (storage, warm start, tests) are ordinary objects that may be kept.
/// Fan-out receives frames through its channel, outside any scope: the pool reuses a frame only after fan-out has
/// taken it (its <see cref="Ticket"/>).
/// </para>
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

    private PriceFrame()
        : base(0, 0, [])
    {
        Pooled = true;
    }

    /// <summary>Made by a <see cref="PriceFramePool"/>: reused after its grace period, never kept outside a read scope.</summary>
    internal bool Pooled { get; }

    /// <summary>Pool side: the epoch it left the cache in (see <see cref="FrameEpochs"/>).</summary>
    internal long RetiredAt;

    /// <summary>Pool side: its place in fan-out's channel; the pool reuses it once fan-out has taken that many.</summary>
    internal long Ticket;

    public int InstrumentId { get; private set; }

    public double LastPrice { get; private set; }

    public long Volume { get; private set; }

    /// <summary>Trade time, Unix microseconds UTC.</summary>
    public long TimestampUs { get; private set; }

    public double ChangePercent { get; private set; }

    /// <summary>The close <see cref="ChangePercent"/> is measured against; stored so it survives restarts.</summary>
    public double PreviousClose { get; private set; }

    public PriceSource Source { get; private set; }

    /// <summary>The bytes carry <c>"stale": true</c>: a stored price, or a cached one served while the feed is down.</summary>
    public bool Stale { get; private set; }

    // Variants built on first need, never on the tick path: the stale copy (a snapshot or REST answer while the feed is
    // down) and the timed bytes (a socket that asked for timing). One field for both keeps the frame small.
    // Two threads may race to build one; the first stored wins. A refill clears the holder's fields and keeps it.
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
    public ReadOnlyMemory<byte> TimedUtf8(TimeProvider time)
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

    internal static PriceFrame CreatePooled() => new();

    /// <summary>
    /// Pool side: the frame now holds this price. Only on a frame no reader can reach (new, or past its grace period),
    /// so nothing observes it half-written; publishing it to the cache (a volatile write) orders it before any read.
    /// </summary>
    internal void Fill(int instrumentId, in Tick tick, long seq, double changePercent, double previousClose, byte[] buffer, int length)
    {
        Seq = seq;
        ReceivedTimestamp = tick.ReceivedTimestamp;
        _utf8 = buffer;
        _utf8Length = length;
        InstrumentId = instrumentId;
        LastPrice = tick.LastPrice;
        Volume = tick.Volume;
        TimestampUs = tick.ExchangeTimeUs;
        ChangePercent = changePercent;
        PreviousClose = previousClose;
        Source = tick.Source;
        if (_variants is { } variants)
        {
            variants.Stale = null;
            variants.Timed = null;
        }
    }

    /// <summary>The buffer a refill may write into (the pool keeps it from the last price).</summary>
    internal byte[] Buffer => _utf8;

    private Variants GetVariants() =>
        Volatile.Read(ref _variants) ?? Interlocked.CompareExchange(ref _variants, new Variants(), null) ?? _variants!;

    private sealed class Variants
    {
        public PriceFrame? Stale;
        public byte[]? Timed;
    }
}
