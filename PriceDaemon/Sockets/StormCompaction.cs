using System.Runtime;

namespace PriceDaemon.Sockets;

/// <summary>
/// After a connection storm settles (many sockets opened, and the count stopped growing fast), one aggressive,
/// compacting gen2 collection that gives the storm's garbage back to the operating system.
/// </summary>
/// <remarks>
/// A storm (market open, every client reconnecting after a deploy or a network blip) allocates handshakes,
/// request heads, admission contexts and the first subscribe messages of thousands of sockets at once; what
/// survives is a few kilobytes per socket, but the heap grew to hold all of it, and a workstation GC keeps that
/// memory committed, so the daemon's resident size stays at its storm peak for hours of quiet. One blocking
/// collection returns it, at the one moment it is both large and cheap to pay for: the storm itself already
/// held every socket's first frames back, and right after it the pipeline is quiet. It never runs more often
/// than <see cref="MinIntervalSeconds"/>, and only after at least <c>Limits:CompactAfterConnections</c> new
/// sockets, so a steady trickle of connections never triggers it.
/// </remarks>
internal sealed class StormCompaction
{
    /// <summary>A storm that ends within this of the last collection waits for the next sweep after it.</summary>
    internal const int MinIntervalSeconds = 60;

    private readonly int _threshold;
    private readonly long _minIntervalTicks;
    private int _baseline; // the count after the last collection (or at start): growth is measured from here
    private int _lastCount = -1; // the count at the previous sweep
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
    /// the count grew by the threshold since the last one, grew by at most a tenth of it since the previous sweep (the
    /// storm is over), and the last collection is long enough ago.
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

        // Settled: the last second brought at most a tenth of a storm. Not "no growth at all": a busy daemon always has
        // some clients connecting, and a storm's tail trickles.
        if (_threshold == 0 || previous < 0 || count - previous > _threshold / 10 || count - _baseline < _threshold
            || (_lastCollectedAt != long.MinValue && now - _lastCollectedAt < _minIntervalTicks))
        {
            return false;
        }

        _baseline = count;
        _lastCollectedAt = now;
        return true;
    }

    /// <summary>One blocking, compacting collection of every generation, large objects too, that decommits what it frees.</summary>
    public static void Collect()
    {
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }
}
