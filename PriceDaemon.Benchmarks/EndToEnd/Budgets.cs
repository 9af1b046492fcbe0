using System.Globalization;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>Holds a scenario's measured figures to its budgets; every budget that is set is checked.</summary>
internal static class Budgets
{
    public static IReadOnlyList<BudgetCheck> Check(ScenarioBudgets budgets, LoadResult daemon, double? baselineRatio)
    {
        var checks = new List<BudgetCheck>();
        if (budgets.P99Ms is { } p99)
        {
            checks.Add(AtMost("p99 latency (ms)", daemon.P99Ms, p99));
        }

        if (budgets.CpuUsPerFrame is { } cpu)
        {
            checks.Add(AtMost("daemon CPU per delivered frame (µs)", daemon.CpuUsPerFrame, cpu));
        }

        if (budgets.MaxLostLastValues is { } lost)
        {
            // No consistency figures means the check did not run, which must not pass silently.
            checks.Add(AtMost("lost last values", daemon.Consistency?.Failures ?? double.PositiveInfinity, lost));
        }

        if (budgets.KiBPerIdleConnection is { } kib)
        {
            checks.Add(AtMost("daemon memory per idle connection (KiB)", daemon.KiBPerIdleConnection, kib));
        }

        if (budgets.MinBaselineRatio is { } ratio)
        {
            checks.Add(AtLeast("frames per CPU-second vs baseline (x)", baselineRatio ?? 0, ratio));
        }

        return checks;
    }

    /// <summary>
    /// Says when a CPU budget is below what the machine itself charges for one loopback write per frame (the
    /// raw TCP ceiling, no server at all): such a budget can only be met by writing several frames per socket
    /// write, which the daemon's own frames-per-write figure then shows it did or did not do. Budgets that
    /// are physically out of reach at one frame per write should read as that, not as a slow daemon.
    /// </summary>
    public static IReadOnlyList<string> AgainstCeiling(ScenarioBudgets budgets, LoadResult daemon, LoadResult? baseline, CeilingResult? oneFramePerWrite)
    {
        var notes = new List<string>();
        if (oneFramePerWrite is not { CpuUsPerFrame: > 0 } one)
        {
            return notes;
        }

        var achieved = daemon.Counters?.FramesPerWrite is { } fpw
            ? string.Create(CultureInfo.InvariantCulture, $"the daemon averaged {fpw:F2} frames per write")
            : "the daemon's frames per write were not read";
        if (budgets.CpuUsPerFrame is { } cpu && cpu < one.CpuUsPerFrame)
        {
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"the CPU budget of {cpu:0.###} µs per frame is below one loopback write per frame on this machine ({one.CpuUsPerFrame:F2} µs per frame for raw TCP with no server), so only several frames per write can meet it; {achieved}"));
        }

        if (budgets.MinBaselineRatio is { } ratio && baseline is { CpuUsPerFrame: > 0 } b && b.CpuUsPerFrame / ratio < one.CpuUsPerFrame)
        {
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"{ratio:0.#}x the baseline means at most {b.CpuUsPerFrame / ratio:F2} µs per frame, also below one loopback write per frame ({one.CpuUsPerFrame:F2} µs)"));
        }

        return notes;
    }

    private static BudgetCheck AtMost(string metric, double actual, double limit) => new(metric, actual, "<=", limit, actual <= limit);

    private static BudgetCheck AtLeast(string metric, double actual, double limit) => new(metric, actual, ">=", limit, actual >= limit);
}
