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

    private static BudgetCheck AtMost(string metric, double actual, double limit) => new(metric, actual, "<=", limit, actual <= limit);

    private static BudgetCheck AtLeast(string metric, double actual, double limit) => new(metric, actual, ">=", limit, actual >= limit);
}
