using PriceDaemon.Benchmarks.EndToEnd;

namespace PriceDaemon.Tests.Benchmarks;

public sealed class BudgetsTests
{
    private static readonly ScenarioBudgets CampusPeak = new() { P99Ms = 5, CpuUsPerFrame = 2, MaxLostLastValues = 0, MinBaselineRatio = 5 };

    [Test]
    public void Check_Passes_WhenEveryFigureIsWithinItsBudget()
    {
        var daemon = Result(p99Ms: 4.2, cpuSeconds: 0.3, frames: 200_000, lost: 0);

        var checks = Budgets.Check(CampusPeak, daemon, baselineRatio: 6.5);

        Assert.That(checks.Select(static c => (c.Metric, c.Passed)), Is.EqualTo(new[]
        {
            ("p99 latency (ms)", true),
            ("daemon CPU per delivered frame (µs)", true),
            ("lost last values", true),
            ("frames per CPU-second vs baseline (x)", true),
        }));
    }

    [Test]
    public void Check_Fails_WhenLatencyCpuLossOrRatioMissTheirBudgets()
    {
        var daemon = Result(p99Ms: 5.001, cpuSeconds: 1.0, frames: 200_000, lost: 1);

        var checks = Budgets.Check(CampusPeak, daemon, baselineRatio: 4.9);

        Assert.That(checks.Where(static c => !c.Passed).Select(static c => (c.Metric, c.Actual)), Is.EqualTo(new[]
        {
            ("p99 latency (ms)", 5.001),
            ("daemon CPU per delivered frame (µs)", 5.0),
            ("lost last values", 1.0),
            ("frames per CPU-second vs baseline (x)", 4.9),
        }));
    }

    [Test]
    public void Check_FailsLostLastValues_WhenConsistencyWasNotChecked()
    {
        var checks = Budgets.Check(new ScenarioBudgets { MaxLostLastValues = 0 }, new LoadResult(), baselineRatio: null);
        Assert.That(checks.Single().Passed, Is.False);
    }

    [Test]
    public void Check_HoldsIdleMemory_PerConnection()
    {
        var checks = Budgets.Check(new ScenarioBudgets { KiBPerIdleConnection = 16 }, new LoadResult { KiBPerIdleConnection = 16.5 }, null);
        Assert.That((checks.Single().Metric, checks.Single().Passed), Is.EqualTo(("daemon memory per idle connection (KiB)", false)));
    }

    [Test]
    public void Check_ChecksNothing_WhenNoBudgetIsSet()
    {
        Assert.That(Budgets.Check(new ScenarioBudgets(), Result(100, 10, 1, 5), null), Is.Empty);
    }

    [Test]
    public void AgainstCeiling_Says_WhenCpuAndRatioBudgetsAreBelowOneLoopbackWritePerFrame()
    {
        // Raw TCP at one frame per write: 2.9 µs per frame. The baseline spends 5.5, so 5x needs 1.1.
        var one = new CeilingResult("one frame per write", 1, 1000, 1_000_000, 1, 2.9);
        var baseline = new LoadResult { FramesDelivered = 1_000_000, CpuSeconds = 5.5 };
        var daemon = Result(7, 3.6, 1_000_000, 0) with { Counters = new DaemonCounters(1_630_000, 1_000_000, 0, 0) };

        var notes = Budgets.AgainstCeiling(CampusPeak, daemon, baseline, one);

        Assert.That(notes, Is.EqualTo(new[]
        {
            "the CPU budget of 2 µs per frame is below one loopback write per frame on this machine (2.90 µs per frame for raw TCP with no server), so only several frames per write can meet it; the daemon averaged 1.63 frames per write",
            "5x the baseline means at most 1.10 µs per frame, also below one loopback write per frame (2.90 µs)",
        }));
    }

    [Test]
    public void AgainstCeiling_SaysNothing_WhenBudgetsAreWithinReachOrTheCeilingWasNotMeasured()
    {
        var cheapWrites = new CeilingResult("one frame per write", 1, 1000, 1_000_000, 1, 1.5);
        var baseline = new LoadResult { FramesDelivered = 1_000_000, CpuSeconds = 10 };

        Assert.That(Budgets.AgainstCeiling(CampusPeak, Result(4, 1, 1_000_000, 0), baseline, cheapWrites), Is.Empty);
        Assert.That(Budgets.AgainstCeiling(CampusPeak, Result(4, 1, 1_000_000, 0), baseline, oneFramePerWrite: null), Is.Empty);
    }

    private static LoadResult Result(double p99Ms, double cpuSeconds, long frames, int lost) => new()
    {
        P99Ms = p99Ms,
        CpuSeconds = cpuSeconds,
        FramesDelivered = frames,
        MeasuredSeconds = 1,
        Consistency = new ConsistencyResult(10, 10 - lost, 0, lost, 0, []),
    };
}
