using System.Diagnostics;
using System.Runtime;

namespace PriceDaemon.Sockets;

/// <summary>
/// After a connection storm settles (many sockets opened fast, and the count stopped growing fast), one aggressive,
/// compacting gen2 collection that gives the storm's garbage back to the operating system.
/// </summary>
/// <remarks>
/// A storm (market open, every client reconnecting after a deploy or a network blip) allocates handshakes,
/// request heads, admission contexts and the first subscribe messages of thousands of sockets at once; what
/// survives is a few kilobytes per socket, but the heap grew to hold all of it, and a workstation GC keeps that
/// memory committed, so the daemon's resident size stays at its storm peak for hours of quiet. One blocking
/// collection returns it, at the one moment it is both large and cheap to pay for: the storm itself already
/// held every socket's first frames back, and right after it the pipeline is quiet. Only a storm triggers it: at
/// least <c>Limits:CompactAfterConnections</c> new sockets since the last one, some second of them arriving at a
/// storm's rate (more than a tenth of that a second); a steady stream of connections, however long, never does,
/// its garbage is the ordinary collections' work. A storm that pauses and resumes may be compacted twice, never
/// twice within <see cref="MinIntervalSeconds"/>.
/// </remarks>
internal sealed class StormCompaction
{
    /// <summary>The shortest time between two collections: bounds the pauses of a storm that stops and starts.</summary>
    internal const int MinIntervalSeconds = 10;

    private readonly int _threshold;
    private readonly long _minIntervalTicks;
    private int _baseline; // the count after the last collection (or at start): growth is measured from here
    private int _lastCount = -1; // the count at the previous sweep
    private bool _stormSeen; // some sweep since the last collection saw sockets arrive at a storm's rate
    private long _lastCollectedAt = long.MinValue;

    /// <param name="threshold">Sockets gained since the last collection that make a storm; 0 turns this off.</param>
    /// <param name="timestampFrequency">The sweep clock's ticks per second.</param>
    public StormCompaction(int threshold, long timestampFrequency)
    {
        _threshold = threshold;
        _minIntervalTicks = MinIntervalSeconds * timestampFrequency;
    }

    /// <summary>
    /// Sweeper, once a second: whether a collection is due now (the caller then runs <see cref="Collect"/>). Due when
    /// the count grew by the threshold since the last one, at a storm's rate for at least one sweep, grew by at most a
    /// tenth of the threshold since the previous sweep (the storm is over), and the last collection is long enough ago.
    /// </summary>
    public bool ShouldCollect(int count, long now)
    {
        var previous = _lastCount;
        _lastCount = count;
        if (count < _baseline)
        {
            // Sockets left: a later storm is measured from the lower count.
            _baseline = count;
        }

        if (_threshold == 0 || previous < 0)
        {
            return false;
        }

        // Not "no growth at all" for settled: a busy daemon always has some clients connecting, and a storm's tail trickles.
        var settled = count - previous <= _threshold / 10;
        _stormSeen |= !settled;
        if (!settled || !_stormSeen || count - _baseline < _threshold
            || (_lastCollectedAt != long.MinValue && now - _lastCollectedAt < _minIntervalTicks))
        {
            return false;
        }

        _baseline = count;
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
