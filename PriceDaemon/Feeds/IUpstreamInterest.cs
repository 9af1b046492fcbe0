namespace PriceDaemon.Feeds;

/// <summary>
/// What clients want from the feed, for feeds that subscribe upstream selectively (Upstox). Sessions call it
/// when a client subscribes or unsubscribes and when a session ends; it is off the price path.
/// </summary>
public interface IUpstreamInterest
{
    /// <summary>
    /// One more client wants <paramref name="instrumentId"/>. False when the feed cannot take one more
    /// instrument upstream; the client's subscription is then rejected with <see cref="LimitCode"/>.
    /// </summary>
    bool Acquire(int instrumentId);

    /// <summary>A client no longer wants <paramref name="instrumentId"/> (unsubscribed, or its session ended).</summary>
    void Release(int instrumentId);

    /// <summary>
    /// One more client wants the order book of <paramref name="instrumentId"/>: the 5-level depth, or with
    /// <paramref name="book"/> the 30-level book. A feed that subscribes per mode (Upstox: <c>full</c>,
    /// <c>full_d30</c>) raises the instrument's mode and counts it against that mode's cap; false when full.
    /// Feeds that need no bookkeeping treat it as any other interest in the instrument.
    /// </summary>
    bool AcquireDepth(int instrumentId, bool book) => Acquire(instrumentId);

    /// <summary>A client no longer wants that depth or book; the mode falls back when the last one leaves.</summary>
    void ReleaseDepth(int instrumentId, bool book) => Release(instrumentId);

    /// <summary>The <c>rejected[].code</c> of a subscription the upstream cap refused.</summary>
    public const string LimitCode = "upstream_limit";
}

/// <summary>Feeds that produce every instrument anyway (simulated, replay) need no bookkeeping.</summary>
internal sealed class NoUpstreamInterest : IUpstreamInterest
{
    public bool Acquire(int instrumentId) => true;

    public void Release(int instrumentId)
    {
    }
}
