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

    // Built on first need by a send pass for a socket that asked for timing; sockets that did not never cause it.
    // The first one built wins, so every timing socket gets the same bytes (the receive time is derived from the
    // clock at build time, which would differ by microseconds between two builders).
    private byte[]? _timed;

    /// <summary>
    /// The frame's bytes with <c>data.received_at</c>, the wall-clock time the daemon received the tick; the plain bytes
    /// when that was not measured (a price restored from storage).
    /// </summary>
    public byte[] TimedUtf8(TimeProvider time)
    {
        if (Volatile.Read(ref _timed) is { } timed)
        {
            return timed;
        }

        if (ReceivedTimestamp == 0)
        {
            return Utf8;
        }

        // The receive time is a monotonic timestamp: its wall-clock time is now minus its age.
        var receivedUs = (time.GetUtcNow().UtcTicks - DateTime.UnixEpoch.Ticks - time.GetElapsedTime(ReceivedTimestamp).Ticks) / 10;
        var built = FrameEncoder.WithReceivedAt(this, receivedUs);
        return Interlocked.CompareExchange(ref _timed, built, null) ?? built;
    }
}
