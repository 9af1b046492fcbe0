namespace PriceDaemon.Pipeline;

/// <summary>The side of a session that fan-out talks to. Implementations must not block.</summary>
public interface ISubscriber
{
    /// <summary>
    /// <paramref name="subscription"/> has a newer <see cref="Subscription.Latest"/>: mark its slot ready and
    /// make sure a send pass will run, or count a conflation when the slot is already marked.
    /// </summary>
    void Offered(Subscription subscription);
}

/// <summary>
/// One session's interest in one instrument. Fan-out stores the newest frame in <see cref="Latest"/> and
/// marks the subscription's slot in its session's <see cref="ReadySlots"/>; a send pass takes the marks and
/// writes each <see cref="Latest"/> whose sequence is above the last one it wrote. Holding only the newest
/// frame per instrument is what bounds a slow socket's queue and guarantees it never sees an older price
/// after a newer one.
/// </summary>
public sealed class Subscription
{
    private PriceFrame? _latest;
    private bool _removed;
    private bool _snapshot;

    public Subscription(ISubscriber owner, int instrumentId, int slot = 0)
    {
        Owner = owner;
        InstrumentId = instrumentId;
        Slot = slot;
    }

    public ISubscriber Owner { get; }

    public int InstrumentId { get; }

    /// <summary>This subscription's place in its session's <see cref="ReadySlots"/>.</summary>
    public int Slot { get; }

    /// <summary>The newest frame offered, or null. Never cleared: the writer compares sequences instead.</summary>
    public PriceFrame? Latest => Volatile.Read(ref _latest);

    /// <summary>Sequence of the last frame written to the socket; only the session's writer touches it.</summary>
    internal long LastSentSeq { get; set; }

    internal bool Removed => Volatile.Read(ref _removed);

    /// <summary>Fan-out path: the frame is the newest for this instrument, so it always replaces what is there.</summary>
    public void Offer(PriceFrame frame)
    {
        if (Removed)
        {
            // Fan-out working on an older copy of the index.
            return;
        }

        Volatile.Write(ref _latest, frame);
        Owner.Offered(this);
    }

    /// <summary>Snapshot path: racing with fan-out, so only replace a frame that is older.</summary>
    public void OfferIfNewer(PriceFrame frame)
    {
        while (true)
        {
            var current = Volatile.Read(ref _latest);
            if (current is not null && current.Seq >= frame.Seq)
            {
                return;
            }

            // Flagged before it can be seen, so no pass writes the snapshot without knowing what it is.
            Volatile.Write(ref _snapshot, true);
            if (Interlocked.CompareExchange(ref _latest, frame, current) == current)
            {
                Owner.Offered(this);
                return;
            }

            Volatile.Write(ref _snapshot, false);
        }
    }

    /// <summary>
    /// Writer path: whether a snapshot was offered since the last call. A snapshot's age is the age of the
    /// cached price, not delivery latency, so the latency histogram leaves it out.
    /// </summary>
    internal bool TakeSnapshotFlag() => Volatile.Read(ref _snapshot) && Interlocked.Exchange(ref _snapshot, false);

    internal void MarkRemoved() => Volatile.Write(ref _removed, true);
}
