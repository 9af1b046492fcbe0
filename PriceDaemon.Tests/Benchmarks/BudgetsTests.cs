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

    private static LoadResult Result(double p99Ms, double cpuSeconds, long frames, int lost) => new()
    {
        P99Ms = p99Ms,
        CpuSeconds = cpuSeconds,
        FramesDelivered = frames,
        MeasuredSeconds = 1,
        Consistency = new ConsistencyResult(10, 10 - lost, 0, lost, 0, []),
    };
}
