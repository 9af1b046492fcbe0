namespace PriceDaemon.Pipeline;

/// <summary>The side of a session that fan-out talks to. Implementations must not block.</summary>
public interface ISubscriber
{
    /// <summary>The subscription went from no pending frame to one: queue it for the writer.</summary>
    void Signal(Subscription subscription);

    /// <summary>A pending frame was replaced by a newer one before it was sent.</summary>
    void Conflated();
}

/// <summary>
/// One session's interest in one instrument, and its one-frame mailbox. Fan-out swaps the newest frame
/// in; the session's writer swaps it out. Holding one pending frame per instrument is what bounds a slow
/// socket's queue and guarantees it never sees an older price after a newer one.
/// </summary>
public sealed class Subscription
{
    // What a removed subscription's mailbox holds instead of null, so no late offer signals it again while it
    // may still sit in its session's ready list (a subscription is in that list at most once: it is signalled
    // only when its mailbox goes from empty to full, and only the session's writer empties it).
    private static readonly PriceFrame RemovedMarker = new(-1, long.MinValue, 0, 0, 0, 0, 0, default, false, 0, []);

    private PriceFrame? _pending;
    private bool _removed;
    private bool _snapshot;

    public Subscription(ISubscriber owner, int instrumentId)
    {
        Owner = owner;
        InstrumentId = instrumentId;
    }

    /// <summary>A control frame (ack, status, error) queued in a session's ready list in the same order as prices.</summary>
    internal Subscription(ISubscriber owner, byte[] controlFrame)
        : this(owner, -1)
    {
        ControlFrame = controlFrame;
    }

    /// <summary>The next item of the session's ready list; owned by the session's send side.</summary>
    internal Subscription? NextReady { get; set; }

    internal byte[]? ControlFrame { get; }

    public ISubscriber Owner { get; }

    public int InstrumentId { get; }

    /// <summary>Sequence of the last frame written to the socket; only the session's writer touches it.</summary>
    internal long LastSentSeq { get; set; }

    internal bool Removed => Volatile.Read(ref _removed);

    /// <summary>Fan-out path: the frame is the newest for this instrument, so it always replaces what is pending.</summary>
    public void Offer(PriceFrame frame)
    {
        var previous = Interlocked.Exchange(ref _pending, frame);
        if (previous is null)
        {
            Owner.Signal(this);
        }
        else
        {
            Owner.Conflated();
        }
    }

    /// <summary>Snapshot path: racing with fan-out, so only replace a pending frame that is older.</summary>
    public void OfferIfNewer(PriceFrame frame)
    {
        while (true)
        {
            var current = Volatile.Read(ref _pending);
            if (current is not null && current.Seq >= frame.Seq)
            {
                return;
            }

            if (Interlocked.CompareExchange(ref _pending, frame, current) == current)
            {
                Volatile.Write(ref _snapshot, true);
                if (current is null)
                {
                    Owner.Signal(this);
                }

                return;
            }
        }
    }

    /// <summary>Writer path: takes the pending frame, if any.</summary>
    internal PriceFrame? Take() => Interlocked.Exchange(ref _pending, null);

    /// <summary>
    /// Writer path: whether a snapshot was offered since the last call. A snapshot's age is the age of the
    /// cached price, not delivery latency, so the latency histogram leaves it out.
    /// </summary>
    internal bool TakeSnapshotFlag() => Volatile.Read(ref _snapshot) && Interlocked.Exchange(ref _snapshot, false);

    internal void MarkRemoved()
    {
        Volatile.Write(ref _removed, true);
        Interlocked.Exchange(ref _pending, RemovedMarker);
    }
}
