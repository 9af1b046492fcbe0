using System.Globalization;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>Holds a scenario's measured figures to its budgets; every budget that is set is checked.</summary>
internal static class Budgets
{
    public static IReadOnlyList<BudgetCheck> Check(
        ScenarioBudgets budgets, LoadResult daemon, double? baselineRatio, IReadOnlyList<CeilingResult>? ceiling = null, LoadResult? baseline = null)
    {
        ceiling ??= [];
        var one = OneFramePerWrite(ceiling);
        var checks = new List<BudgetCheck>();
        if (P99Limit(budgets, daemon, one) is { } p99)
        {
            checks.Add(AtMost("p99 latency (ms)", daemon.P99Ms, p99));
        }

        if (budgets.CpuUsPerFrame is { } cpu)
        {
            checks.Add(AtMost("daemon CPU per delivered frame (µs)", daemon.CpuUsPerFrame, cpu));
        }

        if (budgets.MinRawCpuRatio is { } rawRatio)
        {
            // No raw figure at the daemon's frames per write means the check could not run: it must not pass.
            var same = SameFramesPerWrite(daemon);
            var raw = ceiling.FirstOrDefault(c => !c.Paced && c.FramesPerWrite == same);
            var actual = raw is { FramesPerCpuSecond: > 0 } r ? daemon.FramesPerCpuSecond / r.FramesPerCpuSecond : 0;
            checks.Add(AtLeast(string.Create(CultureInfo.InvariantCulture, $"frames per CPU-second vs raw TCP at {same} frames per write (x)"), actual, rawRatio));
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

        if (budgets.MinBaselineRatio is { } ratio && !BaselineBoundByWrites(ratio, baseline, one))
        {
            checks.Add(AtLeast("frames per CPU-second vs baseline (x)", baselineRatio ?? 0, ratio));
        }

        return checks;
    }

    /// <summary>The daemon's frames per socket write, rounded, at least 1: where its raw TCP comparison is measured.</summary>
    public static int SameFramesPerWrite(LoadResult daemon) =>
        daemon.Counters?.FramesPerWrite is { } fpw && double.IsFinite(fpw) ? Math.Max(1, (int)Math.Round(fpw, MidpointRounding.AwayFromZero)) : 1;

    /// <summary>
    /// F, in ms: one core writing once to each of <paramref name="sockets"/> at raw TCP's one-frame-per-write cost.
    /// No server visits every socket once faster; a p99 below it is out of any server's reach.
    /// </summary>
    public static double? WriteFloorMs(int sockets, CeilingResult? oneFramePerWrite) =>
        oneFramePerWrite is { CpuUsPerFrame: > 0 } one ? sockets * one.CpuUsPerFrame / 1000 : null;

    /// <summary>The p99 budget: <see cref="ScenarioBudgets.P99Ms"/>, raised to the write floor's multiple when that is larger.</summary>
    public static double? P99Limit(ScenarioBudgets budgets, LoadResult daemon, CeilingResult? oneFramePerWrite)
    {
        if (budgets.P99WriteFloorFactor is { } factor && WriteFloorMs(daemon.Connections, oneFramePerWrite) is { } floor)
        {
            return Math.Max(budgets.P99Ms ?? 0, factor * floor);
        }

        return budgets.P99Ms;
    }

    private static CeilingResult? OneFramePerWrite(IReadOnlyList<CeilingResult> ceiling) => ceiling.FirstOrDefault(static c => !c.Paced && c.FramesPerWrite == 1);

    /// <summary>The baseline pays one write per frame: a ratio that asks it to be beaten by more than that write costs is not the daemon's to meet.</summary>
    private static bool BaselineBoundByWrites(double ratio, LoadResult? baseline, CeilingResult? one) =>
        baseline is { CpuUsPerFrame: > 0 } b && one is { CpuUsPerFrame: > 0 } o && b.CpuUsPerFrame / ratio < o.CpuUsPerFrame;

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
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"{ratio:0.#}x the baseline means at most {b.CpuUsPerFrame / ratio:F2} µs per frame, also below one loopback write per frame ({one.CpuUsPerFrame:F2} µs), so that budget is not checked: the baseline is bound by the write cost"));
        }

        if (budgets.P99WriteFloorFactor is { } factor && WriteFloorMs(daemon.Connections, one) is { } floor)
        {
            var raised = factor * floor;
            var applied = raised > (budgets.P99Ms ?? 0)
                ? string.Create(CultureInfo.InvariantCulture, $"{factor:0.##} x F applies")
                : string.Create(CultureInfo.InvariantCulture, $"the {budgets.P99Ms:0.###} ms floor applies");
            notes.Add(string.Create(CultureInfo.InvariantCulture,
                $"F = {daemon.Connections:N0} sockets x {one.CpuUsPerFrame:F2} µs per write = {floor:F2} ms; p99 bound max({budgets.P99Ms ?? 0:0.###}, {factor:0.##} x F) = {Math.Max(budgets.P99Ms ?? 0, raised):F2} ms ({applied}); p99 / F = {daemon.P99Ms / floor:F2}"));
        }

        return notes;
    }

    private static BudgetCheck AtMost(string metric, double actual, double limit) => new(metric, actual, "<=", limit, actual <= limit);

    private static BudgetCheck AtLeast(string metric, double actual, double limit) => new(metric, actual, ">=", limit, actual >= limit);
}
