using PriceDaemon.Benchmarks.EndToEnd;

namespace PriceDaemon.Tests.Benchmarks;

public sealed class LatencyHistogramTests
{
    [Test]
    public void Percentile_ReturnsNearestRank_ForExactRange()
    {
        var histogram = new LatencyHistogram();
        for (var us = 1; us <= 100; us++)
        {
            histogram.Record(us);
        }

        Assert.That(
            (histogram.Percentile(50), histogram.Percentile(99), histogram.Percentile(99.9), histogram.Percentile(100), histogram.MaxMicroseconds),
            Is.EqualTo((50L, 99L, 100L, 100L, 100L)));
    }

    [Test]
    public void RecordingsFromManyThreads_AreAllCounted()
    {
        // Each thread counts into its own shard; the figures are the sum of all of them.
        var histogram = new LatencyHistogram();
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            for (var us = 1; us <= 1000; us++)
            {
                histogram.Record(us + (t * 1000));
            }
        })).ToList();
        threads.ForEach(static t => t.Start());
        threads.ForEach(static t => t.Join());

        Assert.That((histogram.Count, histogram.MaxMicroseconds), Is.EqualTo((4000L, 4000L)));
        Assert.That(histogram.Percentile(25), Is.EqualTo(1000));
        Assert.That(histogram.Percentile(50), Is.InRange(2000 * (1 - (1.0 / 512)), 2000));
    }

    [Test]
    public void Percentile_IsWithinBucketResolution_AboveExactRange()
    {
        var histogram = new LatencyHistogram();
        histogram.Record(1_234_567);

        var p50 = histogram.Percentile(50);
        Assert.That(p50, Is.LessThanOrEqualTo(1_234_567).And.GreaterThan(1_234_567 * (1 - (1.0 / 512))));
    }

    [Test]
    public void Percentile_ReturnsTail_WhenOneSampleInAThousandIsSlow()
    {
        var histogram = new LatencyHistogram();
        for (var i = 0; i < 999; i++)
        {
            histogram.Record(200);
        }

        histogram.Record(50_000);

        Assert.That((histogram.Percentile(99), histogram.Percentile(99.9), histogram.Percentile(99.95)), Is.EqualTo((200L, 200L, 49_984L)));
    }

    [Test]
    public void Percentile_ReturnsZero_WhenEmpty()
    {
        Assert.That(new LatencyHistogram().Percentile(99), Is.Zero);
    }

    [Test]
    public void Record_ClampsNegative_ToZero()
    {
        var histogram = new LatencyHistogram();
        histogram.Record(-3);
        Assert.That((histogram.Count, histogram.Percentile(100)), Is.EqualTo((1L, 0L)));
    }

    [TestCase(0L)]
    [TestCase(1023L)]
    [TestCase(1024L)]
    [TestCase(1025L)]
    [TestCase(999_999L)]
    [TestCase(86_400_000_000L)]
    public void BucketOf_LowerBoundIsAtMostValue_AndWithinResolution(long value)
    {
        var lower = LatencyHistogram.LowerBound(LatencyHistogram.BucketOf(value));
        Assert.That(lower, Is.LessThanOrEqualTo(value).And.GreaterThanOrEqualTo(value - (value / 512)));
    }
}
