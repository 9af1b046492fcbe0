using PriceDaemon.Sockets;

namespace PriceDaemon.Tests.Sockets;

/// <summary>
/// When the sweep compacts the heap after a connection storm: only once a storm is over, only after a storm's worth of
/// new sockets arriving at a storm's rate, and never twice within the minimum interval. Driven by the sweep's count and
/// a timestamp.
/// </summary>
public sealed class StormCompactionTests
{
    private const long Frequency = 1000; // timestamp ticks per second

    [Test]
    public void AStorm_IsCompactedOnce_AtTheFirstSweepThatSeesItSettle()
    {
        var compaction = new StormCompaction(threshold: 1000, Frequency);
        var second = 0L;
        Assert.That(compaction.ShouldCollect(10, Second(second++)), Is.False, "the first sweep takes the baseline");
        Assert.That(compaction.ShouldCollect(600, Second(second++)), Is.False, "still below a storm");
        Assert.That(compaction.ShouldCollect(1500, Second(second++)), Is.False, "a storm, still growing fast");
        Assert.That(compaction.ShouldCollect(2100, Second(second++)), Is.False, "still growing fast");
        Assert.That(compaction.ShouldCollect(2150, Second(second++)), Is.True, "the tail: a tenth of a storm a second or less");
        Assert.That(compaction.ShouldCollect(2150, Second(second + StormCompaction.MinIntervalSeconds)), Is.False, "the same storm is not compacted twice");
    }

    [Test]
    public void ASteadyStream_NeverCompacts_HoweverManySocketsItAddsUp()
    {
        // 100 new sockets a second for ten minutes: 60,000 in all, but no second at a storm's rate.
        var compaction = new StormCompaction(threshold: 1000, Frequency);
        var collections = 0;
        for (var second = 0; second < 600; second++)
        {
            collections += compaction.ShouldCollect(second * 100, Second(second)) ? 1 : 0;
        }

        Assert.That(collections, Is.Zero);
    }

    [Test]
    public void AStormThatPausesAndResumes_IsCompactedAtEachSettle_NeverWithinTheMinimumInterval()
    {
        var compaction = new StormCompaction(threshold: 1000, Frequency);
        compaction.ShouldCollect(0, Second(0));
        compaction.ShouldCollect(5000, Second(1));
        Assert.That(compaction.ShouldCollect(5000, Second(2)), Is.True, "the pause");

        compaction.ShouldCollect(9000, Second(3)); // it resumes
        Assert.That(compaction.ShouldCollect(9000, Second(4)), Is.False, "settled again, but within the minimum interval");
        Assert.That(compaction.ShouldCollect(9000, Second(2 + StormCompaction.MinIntervalSeconds)), Is.True, "the interval is over");
        Assert.That(compaction.ShouldCollect(9000, Second(3 + (2 * StormCompaction.MinIntervalSeconds))), Is.False, "no new storm since");
    }

    [Test]
    public void SocketsThatLeft_LowerTheBaseline_SoAReconnectStormCounts()
    {
        var compaction = new StormCompaction(threshold: 1000, Frequency);
        compaction.ShouldCollect(5000, Second(0));
        compaction.ShouldCollect(0, Second(1)); // everyone dropped (a network blip)
        compaction.ShouldCollect(4000, Second(2)); // and came back at once
        Assert.That(compaction.ShouldCollect(4000, Second(3)), Is.True);
    }

    [Test]
    public void ThresholdZero_TurnsItOff()
    {
        var compaction = new StormCompaction(threshold: 0, Frequency);
        compaction.ShouldCollect(0, Second(0));
        compaction.ShouldCollect(50_000, Second(1));
        Assert.That(compaction.ShouldCollect(50_000, Second(2)), Is.False);
    }

    private static long Second(long second) => (second * Frequency) + 1;
}
