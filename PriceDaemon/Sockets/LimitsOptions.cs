using System.ComponentModel.DataAnnotations;

namespace PriceDaemon.Sockets;

public sealed class LimitsOptions
{
    public const string Section = "Limits";

    /// <summary>Instruments one connection may subscribe to (the original guide's 100). Also bounds each socket's send queue.</summary>
    [Range(1, 100_000)]
    public int MaxSubscriptionsPerConnection { get; set; } = 100;

    /// <summary>Instruments one user may hold across all of their connections (the original guide's 100).</summary>
    [Range(1, 100_000)]
    public int MaxSubscriptionsPerUser { get; set; } = 100;

    /// <summary>
    /// Subscribe or unsubscribe messages one user may send per <see cref="SubscriptionChangeWindowSeconds"/>
    /// (the guide's 10 a minute); more get <c>rate_limited</c> with <c>retry_after_ms</c> and change nothing.
    /// </summary>
    [Range(1, 100_000)]
    public int SubscriptionChangesPerWindow { get; set; } = 10;

    [Range(1, 3600)]
    public int SubscriptionChangeWindowSeconds { get; set; } = 60;

    /// <summary>A connection with no client message for this long is closed with 1000 "idle timeout". 0 turns it off.</summary>
    [Range(0, 7 * 24 * 3600)]
    public int IdleTimeoutSeconds { get; set; } = 3600;

    /// <summary>Unparseable messages one connection may send in a minute before it is closed with 1008. 0 never closes.</summary>
    [Range(0, 100_000)]
    public int MaxBadMessagesPerMinute { get; set; } = 20;

    /// <summary>
    /// Ack messages one connection may send in a minute; past it an ack gets <c>rate_limited</c> and is not applied
    /// (those notifications replay on the next connect). Each ack works under its user's inbox lock, so a client
    /// looping on acks must not be able to keep a core busy. The client batches acks per task. 0: no limit.
    /// </summary>
    [Range(0, 1_000_000)]
    public int MaxAcksPerMinute { get; set; } = 600;

    /// <summary>Open price sockets in all; one more gets HTTP 503 before the upgrade. Each idle socket costs about 16 KiB.</summary>
    [Range(1, 1_000_000)]
    public int MaxConnections { get; set; } = 50_000;

    /// <summary>
    /// Opt-in: price sockets that make a connection storm (this many more within 5 s, and this many above the count at
    /// the last time). Once the count stops growing fast and the pipeline is quiet (under 100 frames a second, or no
    /// feed), the sweep runs one blocking, compacting collection that gives the storm's garbage back to the operating
    /// system: a pause of 0.4-1.1 s at 20,000 sockets (Sockets/StormCompaction.cs; at most once in 10 minutes; a
    /// trickle, sockets that drop and come back, never). 0 (the default) turns it off; otherwise at least 10.
    /// </summary>
    [Range(0, 1_000_000)]
    public int CompactAfterConnections { get; set; }

    /// <summary>Open sockets one user may hold (tabs, devices); one more gets HTTP 429.</summary>
    [Range(1, 1_000_000)]
    public int MaxConnectionsPerUser { get; set; } = 20;

    /// <summary>Open sockets from one IP address, whoever the users are; one more gets HTTP 429. Campus NAT puts many users behind one address.</summary>
    [Range(1, 1_000_000)]
    public int MaxConnectionsPerIp { get; set; } = 1000;

    /// <summary>
    /// Anonymous peers on a loopback address (a reverse proxy, local tools, the benchmark harness) are one user
    /// per connection rather than one user for the whole machine, and the per-IP limit does not apply to
    /// loopback. Off: anonymous loopback peers share one user, like any other address.
    /// </summary>
    public bool ExemptLoopback { get; set; } = true;

    /// <summary>Largest client message; a bigger one closes the socket with 1009.</summary>
    [Range(256, 16 * 1024 * 1024)]
    public int MaxMessageBytes { get; set; } = 16 * 1024;

    /// <summary>The server pings this often and drops a peer that does not answer within the same time. 0 turns pings off.</summary>
    [Range(0, 3600)]
    public int KeepAliveSeconds { get; set; } = 30;


    /// <summary>
    /// A socket whose write has not completed for this long is cut as a slow consumer (it stopped reading). A socket
    /// that is downsampled (<see cref="SlowConsumerWarnSeconds"/>) and still stays behind for this long is closed.
    /// </summary>
    [Range(1, 3600)]
    public int SlowConsumerSeconds { get; set; } = 10;

    /// <summary>
    /// Flow control before a close: a socket behind for this long (its writes pending at least half of the time)
    /// gets a <c>slow_consumer</c> warning and is downsampled to <see cref="SlowConsumerIntervalMs"/>. 0 turns flow
    /// control off (a socket is only cut after <see cref="SlowConsumerSeconds"/>). Below SlowConsumerSeconds.
    /// </summary>
    [Range(0, 3600)]
    public int SlowConsumerWarnSeconds { get; set; } = 3;

    /// <summary>While downsampled, the socket's own minimum interval per instrument (and per topic); notifications are never held.</summary>
    [Range(50, 60_000)]
    public int SlowConsumerIntervalMs { get; set; } = 1000;

    /// <summary>A downsampled socket that keeps up for this long returns to full rate (and is told so).</summary>
    [Range(1, 3600)]
    public int SlowConsumerRecoverSeconds { get; set; } = 5;

    /// <summary>Cross-field rules, as <c>Key: problem</c>; start-up stops on any.</summary>
    internal IEnumerable<string> Problems()
    {
        if (CompactAfterConnections is > 0 and < StormCompaction.MinThreshold)
        {
            yield return $"CompactAfterConnections: must be 0 (off) or at least {StormCompaction.MinThreshold} (got {CompactAfterConnections})";
        }

        if (SlowConsumerWarnSeconds > 0 && SlowConsumerWarnSeconds >= SlowConsumerSeconds)
        {
            yield return $"SlowConsumerWarnSeconds: must be below Limits:SlowConsumerSeconds ({SlowConsumerSeconds}), or 0 to turn flow control off (got {SlowConsumerWarnSeconds})";
        }
    }

    /// <summary>How long a close handshake may take before the connection is aborted.</summary>
    [Range(1, 60)]
    public int CloseTimeoutSeconds { get; set; } = 2;
}
