using System.Diagnostics;
using System.Runtime;

namespace PriceDaemon.Sockets;

/// <summary>
/// Opt-in (<c>Limits:CompactAfterConnections</c>, default 0): after a connection storm, once it is over and the pipeline
/// is quiet, one aggressive, compacting gen2 collection that gives the storm's garbage back to the operating system.
/// </summary>
/// <remarks>
/// A storm (every client reconnecting after a deploy) allocates handshakes, request heads, admission contexts and the
/// first subscribe messages of thousands of sockets at once; what survives is a few kilobytes per socket, but the heap
/// grew to hold all of it and keeps it committed. Only a blocking, compacting collection returns that (a background
/// gen2 was measured: at the wide run's end it read about as much as none at all), and it stops every socket for
/// 0.4-1.1 s at 15,000-20,000 sockets: a daemon held to millisecond budgets takes that only when asked to, and only
/// when there is nothing to delay: no frames flowing (or no feed). What makes a storm, all of it, so that neither a slow
/// day nor a flapping network nor one abusive client buys a pause: the count grew by at least the threshold within
/// <see cref="WindowSeconds"/>, past the count at the last collection by the threshold (the high-water mark: sockets
/// that drop and come back, however often, are not new memory); the count stopped growing fast (at most a tenth of the
/// threshold in a second); and the last collection is <see cref="MinIntervalSeconds"/> ago. A storm seen stays due
/// until the pipeline is quiet. Sweeper only; allocates nothing after construction.
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
    /// arrived (see the remarks), it is over, it took the count past the high-water mark by the threshold, and the
    /// pipeline is <paramref name="quiet"/>.
    /// </summary>
    public bool ShouldCollect(int count, long now, bool quiet)
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
        if (!_stormSeen || !over || !quiet || count - _highWater < _threshold
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
    /// One blocking, compacting collection of every generation, large objects too, that decommits what it frees; how
    /// long it took and the GC's committed bytes before and after, for the log line that says what it cost and gave.
    /// </summary>
    public static (TimeSpan Pause, long CommittedBefore, long CommittedAfter) Collect()
    {
        var before = GC.GetGCMemoryInfo().TotalCommittedBytes;
        var started = Stopwatch.GetTimestamp();
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        return (Stopwatch.GetElapsedTime(started), before, GC.GetGCMemoryInfo().TotalCommittedBytes);
    }
}
