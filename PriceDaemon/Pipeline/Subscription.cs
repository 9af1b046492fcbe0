namespace PriceDaemon.Pipeline;

/// <summary>The side of a session that fan-out talks to. Implementations must not block.</summary>
public interface ISubscriber
{
    /// <summary>
    /// <paramref name="frame"/>, or a newer frame of the same instrument, is in the <see cref="PriceCache"/>
    /// (or is the subscription's snapshot): mark the subscription's slot ready and make sure a send pass will
    /// run, or count a conflation when the slot is already marked.
    /// </summary>
    void Offered(Subscription subscription, StreamFrame frame);
}

/// <summary>
/// One session's interest in one instrument. Fan-out does not store frames here: the throttle stage puts
/// every frame in the <see cref="PriceCache"/> before fan-out sees it, so fan-out only marks the
/// subscription's slot in its session's <see cref="Sockets.Send.ReadySlots"/>, and a send pass writes the cached frame
/// when it is newer than the last one it wrote. Fan-out therefore only reads subscriptions: their cache lines
/// are not handed between threads on every tick, and no long-lived subscription gains a reference to a
/// young frame for the garbage collector to trace. A slow socket still holds at most one frame per
/// instrument, and never sees an older price after a newer one.
/// </summary>
public sealed class Subscription
{
    private StreamFrame? _snapshot;
    private bool _removed;

    public Subscription(ISubscriber owner, int instrumentId, int slot = 0, IFrameSource? source = null)
    {
        Owner = owner;
        InstrumentId = instrumentId;
        Slot = slot;
        Source = source;
    }

    public ISubscriber Owner { get; }

    /// <summary>The key in its source: an instrument id for prices, a topic's index for a topic.</summary>
    public int InstrumentId { get; }

    /// <summary>Where a send pass reads the newest frame; null for prices (the <see cref="PriceCache"/>, read directly).</summary>
    public IFrameSource? Source { get; }

    /// <summary>This subscription's place in its session's <see cref="Sockets.Send.ReadySlots"/>.</summary>
    public int Slot { get; }

    internal bool Removed => Volatile.Read(ref _removed);

    /// <summary>Fan-out path: <paramref name="frame"/> is the newest emitted for this instrument, and already cached.</summary>
    public void Offer(StreamFrame frame)
    {
        // A removed subscription can still be offered frames by fan-out working on an older copy of the index.
        if (!Removed)
        {
            Owner.Offered(this, frame);
        }
    }

    /// <summary>
    /// Subscribe path: the cached price (or book) to answer with, which may be labelled stale. The send pass writes it
    /// unless the cache has a newer frame by then.
    /// </summary>
    public void OfferSnapshot(StreamFrame frame)
    {
        Volatile.Write(ref _snapshot, frame);
        Owner.Offered(this, frame);
    }

    /// <summary>
    /// Subscribe path, for a live cached price: the cache's frame is the snapshot. Pooled frames must not be held, so
    /// the subscription keeps <see cref="CachedSnapshot"/> in its place; the pass reads the cache, which has that frame
    /// or a newer one, and leaves what it writes out of the latency histogram as it does for any snapshot.
    /// </summary>
    public void OfferCachedSnapshot(StreamFrame frame)
    {
        Volatile.Write(ref _snapshot, CachedSnapshot);
        Owner.Offered(this, frame);
    }

    /// <summary>Stands for "the cache's frame" in a subscription's snapshot (see <see cref="OfferCachedSnapshot"/>).</summary>
    internal static readonly StreamFrame CachedSnapshot = new Marker();

    /// <summary>Writer path: the snapshot offered since the last call, if any.</summary>
    internal StreamFrame? TakeSnapshot() => Volatile.Read(ref _snapshot) is null ? null : Interlocked.Exchange(ref _snapshot, null);

    internal void MarkRemoved() => Volatile.Write(ref _removed, true);

    private sealed class Marker() : StreamFrame(0, 0, []);
}
