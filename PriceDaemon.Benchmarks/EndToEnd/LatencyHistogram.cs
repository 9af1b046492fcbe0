using System.Numerics;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>
/// Latencies in microseconds, recorded from every receive loop at once. Exact below 1,024 µs; above it
/// each power of two is split into 512 buckets, so a percentile is off by at most 0.2 %. Recording is one
/// interlocked increment and never allocates, so the load generator measures the daemon, not itself.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int ExactBuckets = 1024;
    private const int SubBucketBits = 9;
    private const int SubBuckets = 1 << SubBucketBits;

    // Up to 2^40 µs (12 days): far beyond any run.
    private readonly long[] _counts = new long[ExactBuckets + ((40 - 10 + 1) * SubBuckets)];
    private long _count;
    private long _max;

    public long Count => Volatile.Read(ref _count);

    public long MaxMicroseconds => Volatile.Read(ref _max);

    public void Record(long microseconds)
    {
        // Clocks read on one machine never run backwards by more than their resolution; clamp the rounding.
        var value = Math.Max(0, microseconds);
        Interlocked.Increment(ref _counts[BucketOf(value)]);
        Interlocked.Increment(ref _count);
        var max = Volatile.Read(ref _max);
        while (value > max)
        {
            var seen = Interlocked.CompareExchange(ref _max, value, max);
            if (seen == max)
            {
                break;
            }

            max = seen;
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
        long seen = 0;
        for (var bucket = 0; bucket < _counts.Length; bucket++)
        {
            seen += Volatile.Read(ref _counts[bucket]);
            if (seen >= rank)
            {
                return Math.Min(LowerBound(bucket), MaxMicroseconds);
            }
        }

        return MaxMicroseconds;
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
}
