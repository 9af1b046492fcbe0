using System.Numerics;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>
/// Latencies in microseconds, recorded from every receive loop at once. Exact below 1,024 µs; above it
/// each power of two is split into 512 buckets, so a percentile is off by at most 0.2 %. Each recording
/// thread counts into a shard of its own with plain increments (no shared cache line bounces between the
/// load generator's threads on every frame) and never allocates, so the load generator measures the
/// daemon, not itself. Readers sum the shards; read them once recording has stopped for exact figures.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int ExactBuckets = 1024;
    private const int SubBucketBits = 9;
    private const int SubBuckets = 1 << SubBucketBits;

    // Up to 2^40 µs (12 days): far beyond any run.
    private const int BucketCount = ExactBuckets + ((40 - 10 + 1) * SubBuckets);

    private readonly ThreadLocal<Shard> _shards = new(static () => new Shard(), trackAllValues: true);

    public long Count => _shards.Values.Sum(static s => Volatile.Read(ref s.Count));

    public long MaxMicroseconds => _shards.Values.Select(static s => Volatile.Read(ref s.Max)).DefaultIfEmpty(0).Max();

    public void Record(long microseconds)
    {
        // Clocks read on one machine never run backwards by more than their resolution; clamp the rounding.
        var value = Math.Max(0, microseconds);
        var shard = _shards.Value!;
        shard.Counts[BucketOf(value)]++;
        Volatile.Write(ref shard.Count, shard.Count + 1);
        if (value > shard.Max)
        {
            Volatile.Write(ref shard.Max, value);
        }
    }

    /// <summary>
    /// The smallest recorded value (bucket lower bound) such that at least <paramref name="percentile"/> % of
    /// the samples are at or below it (nearest-rank). 0 when nothing was recorded.
    /// </summary>
    public long Percentile(double percentile)
    {
        var total = Count;
        if (total == 0)
        {
            return 0;
        }

        // Rounded first so that 99.9 % of 1,000 is rank 999, not 1,000 by a floating-point hair.
        var rank = Math.Max(1, (long)Math.Ceiling(Math.Round(percentile * total / 100.0, 6)));
        var shards = _shards.Values;
        var max = MaxMicroseconds;
        long seen = 0;
        for (var bucket = 0; bucket < BucketCount; bucket++)
        {
            foreach (var shard in shards)
            {
                seen += Volatile.Read(ref shard.Counts[bucket]);
            }

            if (seen >= rank)
            {
                return Math.Min(LowerBound(bucket), max);
            }
        }

        return max;
    }

    internal static int BucketOf(long microseconds)
    {
        if (microseconds < ExactBuckets)
        {
            return (int)microseconds;
        }

        var highBit = 63 - BitOperations.LeadingZeroCount((ulong)microseconds);
        var shift = highBit - SubBucketBits;
        return ExactBuckets + ((highBit - 10) * SubBuckets) + (int)((microseconds >> shift) - SubBuckets);
    }

    internal static long LowerBound(int bucket)
    {
        if (bucket < ExactBuckets)
        {
            return bucket;
        }

        var octave = (bucket - ExactBuckets) / SubBuckets;
        var sub = (bucket - ExactBuckets) % SubBuckets;
        return (long)(SubBuckets + sub) << (octave + 1);
    }

    /// <summary>One recording thread's counts; only that thread writes them.</summary>
    private sealed class Shard
    {
        public readonly long[] Counts = new long[BucketCount];
        public long Count;
        public long Max;
    }
}
