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
            "5x the baseline means at most 1.10 µs per frame, also below one loopback write per frame (2.90 µs), so that budget is not checked: the baseline is bound by the write cost",
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

    private static readonly ScenarioBudgets MachineRelative = new() { P99Ms = 5, P99WriteFloorFactor = 1.5, MinRawCpuRatio = 0.85 };

    [TestCase(1.66, 2)]
    [TestCase(1.49, 1)]
    [TestCase(0.3, 1)]
    [TestCase(44.5, 45)]
    public void SameFramesPerWrite_IsTheDaemonsRounded_AtLeastOne(double framesPerWrite, int expected)
    {
        var daemon = new LoadResult { Counters = new DaemonCounters((long)(framesPerWrite * 100_000), 100_000, 0, 0) };
        Assert.That(Budgets.SameFramesPerWrite(daemon), Is.EqualTo(expected));
        Assert.That(Budgets.SameFramesPerWrite(new LoadResult()), Is.EqualTo(1), "no counters read: one frame per write");
    }

    [TestCase(2.9, 5.0, "the 5 ms floor")]
    [TestCase(13.9, 20.85, "1.5 x F")]
    public void P99Limit_IsTheLargerOfTheFloorAndOneAndAHalfTimesTheWriteFloor(double rawUsPerWrite, double expectedMs, string applied)
    {
        // F: one core visiting 1,000 sockets once at the raw one-frame-per-write cost.
        var one = new CeilingResult("one frame per write", 1, 1000, 1_000_000, 1, rawUsPerWrite);
        var daemon = Result(6, 4, 1_000_000, 0) with { Connections = 1000 };

        Assert.That(Budgets.WriteFloorMs(1000, one), Is.EqualTo(rawUsPerWrite).Within(1e-9), "1,000 sockets x µs = ms");
        Assert.That(Budgets.P99Limit(MachineRelative, daemon, one), Is.EqualTo(expectedMs).Within(1e-9));
        Assert.That(Budgets.AgainstCeiling(MachineRelative, daemon, null, one), Has.One.Contains($"({applied} applies)"));
        Assert.That(Budgets.P99Limit(MachineRelative, daemon, oneFramePerWrite: null), Is.EqualTo(5), "no raw figure: the plain budget");
    }

    [Test]
    public void MinRawCpuRatio_ComparesWithRawTcpAtTheDaemonsOwnFramesPerWrite()
    {
        // The daemon did 2 frames per write at 4 µs per frame (250,000 frames per CPU-second). Raw TCP at 2 per
        // write did 280,000 (0.89x: pass); at 1 per write 200,000, which must not be the one compared with.
        var daemon = Result(4, 4, 1_000_000, 0) with { Connections = 1000, Counters = new DaemonCounters(2_000_000, 1_000_000, 0, 0) };
        CeilingResult[] ceiling =
        [
            new("one frame per write", 1, 1000, 200_000, 1, 1),
            new("batched", 2, 1000, 280_000, 1, 1),
            new("batched", 16, 1000, 900_000, 1, 1),
        ];

        var check = Budgets.Check(MachineRelative, daemon, null, ceiling).Single(c => c.Metric.StartsWith("frames per CPU-second vs raw", StringComparison.Ordinal));
        Assert.That((check.Metric, check.Actual, check.Passed), Is.EqualTo(("frames per CPU-second vs raw TCP at 2 frames per write (x)", 250_000.0 / 280_000, true)));

        var slower = Budgets.Check(MachineRelative, daemon with { CpuSeconds = 5 }, null, ceiling).Single(c => c.Metric.StartsWith("frames per CPU-second vs raw", StringComparison.Ordinal));
        Assert.That(slower.Passed, Is.False, "200,000 is 0.71x of 280,000");

        var unmeasured = Budgets.Check(MachineRelative, daemon, null, ceiling[..1]).Single(c => c.Metric.StartsWith("frames per CPU-second vs raw", StringComparison.Ordinal));
        Assert.That(unmeasured.Passed, Is.False, "no raw figure at the same frames per write: the check cannot pass");
    }

    [Test]
    public void MinRawCpuRatio_AndTheWriteFloor_NeverUseThePacedCeiling()
    {
        // The paced run writes the daemon's own frames per write at its rate: a reading beside the budget, not the budget's
        // figure. Listed first, at the same frames per write, it must not replace the flat-out one (the definition).
        var daemon = Result(4, 4, 1_000_000, 0) with { Connections = 1000, Counters = new DaemonCounters(2_000_000, 1_000_000, 0, 0) };
        CeilingResult[] ceiling =
        [
            new("paced", 1, 1000, 1_000_000, 1, 1, WritesPerSecond: 500_000),
            new("paced", 2, 1000, 1_000_000, 1, 1, WritesPerSecond: 500_000),
            new("one frame per write", 1, 1000, 200_000, 1, 1),
            new("batched", 2, 1000, 280_000, 1, 1),
        ];

        var checks = Budgets.Check(MachineRelative, daemon, null, ceiling);
        var cpu = checks.Single(c => c.Metric.StartsWith("frames per CPU-second vs raw", StringComparison.Ordinal));
        Assert.That(cpu.Actual, Is.EqualTo(250_000.0 / 280_000), "compared with the flat-out run at 2 frames per write");
        // F from the flat-out single-frame run: 1,000 sockets x 5 µs = 5 ms, so 1.5 F = 7.5 ms (the paced 1 µs would give the 5 ms floor).
        Assert.That(checks.Single(c => c.Metric == "p99 latency (ms)").Limit, Is.EqualTo(7.5).Within(1e-9));
    }

    [Test]
    public void MinBaselineRatio_IsNotChecked_WhenTheBaselineIsBoundByTheWriteCost()
    {
        var one = new CeilingResult("one frame per write", 1, 1000, 1_000_000, 1, 2.9);
        var budgets = new ScenarioBudgets { MinBaselineRatio = 5 };
        var daemon = Result(4, 3, 1_000_000, 0);

        var bound = new LoadResult { FramesDelivered = 1_000_000, CpuSeconds = 5.5 }; // 5.5 / 5 = 1.1 µs < 2.9
        Assert.That(Budgets.Check(budgets, daemon, 1.8, [one], bound), Is.Empty);

        var free = new LoadResult { FramesDelivered = 1_000_000, CpuSeconds = 20 }; // 20 / 5 = 4 µs > 2.9
        Assert.That(Budgets.Check(budgets, daemon, 1.8, [one], free).Single().Passed, Is.False);
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
