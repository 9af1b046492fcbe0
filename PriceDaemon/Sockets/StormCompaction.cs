using System.Diagnostics;

namespace PriceDaemon.Sockets;

/// <summary>
/// After a connection storm settles (many sockets opened fast, beyond the most the daemon held at its last
/// collection), one full background (non-blocking) gen2 collection, so the storm's garbage is found and its regions
/// given back to the operating system without the daemon stopping.
/// </summary>
/// <remarks>
/// A storm (market open, every client reconnecting after a deploy) allocates handshakes, request heads, admission
/// contexts and the first subscribe messages of thousands of sockets at once; what survives is a few kilobytes per
/// socket. The collection is a background one: the daemon is held to millisecond budgets, so it never pauses every
/// socket for the half second a blocking, compacting one takes at 20,000 sockets, and a storm can come at market open.
/// What makes a storm, all of it, so that neither a slow day nor a flapping network nor one abusive client buys a
/// collection: the count grew by at least <c>Limits:CompactAfterConnections</c> within <see cref="WindowSeconds"/>; it
/// is that much above the count at the last collection (the high-water mark: sockets that drop and come back, however
/// often, are not new memory); the count stopped growing fast (at most a tenth of the threshold in a second); and the
/// last collection is <see cref="MinIntervalSeconds"/> ago. Sweeper only; allocates nothing after construction.
/// </remarks>
internal sealed class StormCompaction
{
    /// <summary>
    /// The threshold's growth must fall within this many seconds (sweeps) to be a storm and not a trickle: twice the rate
    /// at which a storm counts as over (a tenth of the threshold a second), so a steady stream at either rate is neither.
    /// </summary>
    internal const int WindowSeconds = 5;

    /// <summary>The shortest time between two collections.</summary>
    internal const int MinIntervalSeconds = 600;

    /// <summary>The smallest threshold that is not 0 (off): below it every few tabs would be a storm.</summary>
    internal const int MinThreshold = 10;

    private readonly int _threshold;
    private readonly long _minIntervalTicks;
    private readonly int[] _counts = new int[WindowSeconds + 1]; // the count at the last sweeps, a ring
    private long _sweeps; // sweeps seen: the ring's position
    private int _highWater; // the count at the last collection (0 at start)
    private bool _stormSeen; // the count rose by the threshold within the window since the last collection
    private long _lastCollectedAt = long.MinValue;

    /// <param name="threshold">New sockets that make a storm; 0 turns this off.</param>
    /// <param name="timestampFrequency">The sweep clock's ticks per second.</param>
    public StormCompaction(int threshold, long timestampFrequency)
    {
        _threshold = threshold;
        _minIntervalTicks = MinIntervalSeconds * timestampFrequency;
    }

    /// <summary>
    /// Sweeper, once a second: whether a collection is due now (the caller then runs <see cref="Collect"/>): a storm
    /// arrived (see the remarks), it is over, and it took the count past the high-water mark by the threshold.
    /// </summary>
    public bool ShouldCollect(int count, long now)
    {
        if (_threshold == 0)
        {
            return false;
        }

        var length = _counts.Length;
        var sweep = _sweeps++;
        _counts[sweep % length] = count;
        if (sweep == 0)
        {
            return false;
        }

        var previous = _counts[(sweep - 1) % length];
        // The count WindowSeconds sweeps ago (or at the first sweep, while the ring fills).
        var windowStart = sweep < WindowSeconds ? _counts[0] : _counts[(sweep - WindowSeconds) % length];
        // Armed only by a fast rise that itself went past the high-water mark: a flap below it followed by hours of
        // trickle past it is no storm.
        _stormSeen |= count - windowStart >= _threshold && count - _highWater >= _threshold;
        // Not "no growth at all" for over: a busy daemon always has some clients connecting, and a storm's tail trickles.
        var over = count - previous <= _threshold / 10;
        if (!_stormSeen || !over || count - _highWater < _threshold
            || (_lastCollectedAt != long.MinValue && now - _lastCollectedAt < _minIntervalTicks))
        {
            return false;
        }

        _highWater = count;
        _stormSeen = false;
        _lastCollectedAt = now;
        return true;
    }

    /// <summary>
    /// Starts a full background gen2 collection and returns at once: the GC marks concurrently with the daemon and
    /// frees the regions it empties. The GC's committed bytes before, for the log line.
    /// </summary>
    public static (TimeSpan Elapsed, long CommittedBefore) Collect()
    {
        var before = GC.GetGCMemoryInfo().TotalCommittedBytes;
        var started = Stopwatch.GetTimestamp();
        GC.Collect(2, GCCollectionMode.Forced, blocking: false);
        return (Stopwatch.GetElapsedTime(started), before);
    }
}
