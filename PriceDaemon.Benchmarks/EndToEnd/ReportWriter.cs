using System.Globalization;
using System.Text;
using System.Text.Json;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>Renders the run as Markdown (printed as the console table too) and as JSON for tools.</summary>
internal static class ReportWriter
{
    private const string None = "–";

    public static string Json(E2eReport report) => JsonSerializer.Serialize(report, ScenarioFile.JsonOptions);

    public static string Markdown(E2eReport report)
    {
        var md = new StringBuilder();
        var m = report.Machine;
        md.AppendLine(Inv($"# PriceDaemon end-to-end run, {report.Started:yyyy-MM-dd HH:mm} UTC"));
        md.AppendLine();
        md.AppendLine(Inv($"Machine: {m.Cores} cores, {m.CpuModel}, {m.Os}, {m.Runtime}; the load generator runs on the same machine."));
        md.AppendLine();
        md.AppendLine(Inv($"Command: `{report.Command}`"));
        foreach (var scenario in report.Scenarios)
        {
            md.AppendLine();
            AppendScenario(md, scenario);
        }

        md.AppendLine();
        md.AppendLine(report.Passed ? "All budgets met." : "BUDGETS MISSED: see the FAIL lines above.");
        return md.ToString();
    }

    private static void AppendScenario(StringBuilder md, ScenarioReport report)
    {
        var s = report.Scenario;
        var d = report.Daemon;
        var b = report.Baseline;
        var one = report.Ceiling.FirstOrDefault(static c => !c.Paced && c.FramesPerWrite == 1);
        var batched = report.Ceiling.Where(static c => !c.Paced && c.FramesPerWrite > 1).MaxBy(static c => c.FramesPerWrite);
        var same = report.Ceiling.FirstOrDefault(c => !c.Paced && c.FramesPerWrite == Budgets.SameFramesPerWrite(d));
        var paced = report.Ceiling.FirstOrDefault(static c => c.Paced);

        md.AppendLine(Inv($"## {s.Name}: {s.Description}"));
        md.AppendLine();
        md.AppendLine(Inv($"{d.Connections:N0} connections x {s.SubscriptionsPerClient} subscriptions over {d.Instruments:N0} instruments; ticks every {s.TickMinMs}-{s.TickMaxMs} ms; Throttle:MinIntervalMs={s.ThrottleMs}; measured {d.MeasuredSeconds:F1} s after {s.WarmupSeconds} s warm-up. Latency: {s.LatencyNote}"));
        foreach (var note in report.Notes)
        {
            md.AppendLine();
            md.AppendLine(Inv($"Note: {note}."));
        }

        md.AppendLine();
        md.AppendLine(Inv($"| metric | PriceDaemon | baseline | raw TCP, 1 frame/write | raw TCP, {(batched is null ? "batched" : Inv($"{batched.FramesPerWrite} frames/write"))} | budget |"));
        md.AppendLine("|---|---:|---:|---:|---:|---|");
        Row(md, "delivered frames/s", N0(d.FramesPerSecond), b is null ? None : N0(b.FramesPerSecond), one is null ? None : N0(one.FramesPerSecond), batched is null ? None : N0(batched.FramesPerSecond), None);
        Row(md, "latency p50 (ms)", F3(d.P50Ms), b is null ? None : F3(b.P50Ms), None, None, None);
        Row(md, "latency p99 (ms)", F3(d.P99Ms), b is null ? None : F3(b.P99Ms), None, None, Budget(Budgets.P99Limit(s.Budgets, d, one), "<="));
        Row(md, "latency p99.9 (ms)", F3(d.P999Ms), b is null ? None : F3(b.P999Ms), None, None, None);
        Row(md, "latency max (ms)", F3(d.MaxMs), b is null ? None : F3(b.MaxMs), None, None, None);
        Row(md, "server CPU per delivered frame (µs)", F3(d.CpuUsPerFrame), b is null ? None : F3(b.CpuUsPerFrame), one is null ? None : F3(one.CpuUsPerFrame), batched is null ? None : F3(batched.CpuUsPerFrame), Budget(s.Budgets.CpuUsPerFrame, "<="));
        Row(md, "server CPU per delivered frame without the JIT thread (µs)", F3(d.CpuUsPerFrameWithoutJit), b is null ? None : F3(b.CpuUsPerFrameWithoutJit), None, None, None);
        Row(md, "frames per socket write", d.Counters?.FramesPerWrite is { } fpw ? F2(fpw) : None, b is null ? None : "1", one is null ? None : N0(one.FramesPerWrite), batched is null ? None : N0(batched.FramesPerWrite), None);
        Row(md, "in-daemon latency, oldest frame per write, mean (ms)", d.Counters?.MeanSendLatencyMs is { } inside ? F3(inside) : None, None, None, None, None);
        Row(md, "GC collections gen0 / gen1 / gen2", d.Counters?.Gc is { } gc ? Inv($"{gc.Gen0:0} / {gc.Gen1:0} / {gc.Gen2:0}") : None, None, None, None, None);
        Row(md, "warm-up before the window (s)", F1(d.WarmupSeconds), b is null ? None : F1(b.WarmupSeconds), None, None, None);
        Row(md, "background JIT thread CPU in the window (ms, share of the server's)", d.CpuSeconds > 0 ? Inv($"{d.JitCpuSeconds * 1000:F0}, {d.JitCpuSeconds / d.CpuSeconds:P0}") : None, b is { CpuSeconds: > 0 } bj ? Inv($"{bj.JitCpuSeconds * 1000:F0}, {bj.JitCpuSeconds / bj.CpuSeconds:P0}") : None, None, None, None);
        Row(md, "JIT compiling in the window (ms of wall clock, any thread)", d.Counters?.JitSeconds is { } jit ? Inv($"{jit * 1000:F0}") : None, None, None, None, None);
        Row(md, "allocated (MB/s), GC pause (ms)", d.Counters?.Gc is { } alloc && d.MeasuredSeconds > 0 ? Inv($"{alloc.AllocatedBytes / d.MeasuredSeconds / 1e6:F2}, {alloc.PauseSeconds * 1000:F1}") : None, None, None, None, None);
        Row(md, "load generator CPU (cores)", F2(d.ClientCores), b is null ? None : F2(b.ClientCores), None, None, None);
        Row(md, "frames per CPU-second", N0(d.FramesPerCpuSecond), b is null ? None : N0(b.FramesPerCpuSecond), one is null ? None : N0(one.FramesPerCpuSecond), batched is null ? None : N0(batched.FramesPerCpuSecond), None);
        Row(md, "server RSS (MiB)", F1(d.RssMiB), b is null ? None : F1(b.RssMiB), None, None, None);
        Row(md, "memory per idle connection (KiB)", F1(d.KiBPerIdleConnection), b is null ? None : F1(b.KiBPerIdleConnection), None, None, Budget(s.Budgets.KiBPerIdleConnection, "<="));
        Row(md, "memory per idle connection at the window's end (KiB)", F1(d.KiBPerIdleConnectionAtEnd), b is null ? None : F1(b.KiBPerIdleConnectionAtEnd), None, None, None);
        Row(md, "time to connect and subscribe all (s)", F1(d.ConnectSeconds), b is null ? None : F1(b.ConnectSeconds), None, None, None);
        Row(md, "lost last values", d.Consistency is { } c ? Inv($"{c.Failures} of {c.Checked:N0}") : None, None, None, None, Budget(s.Budgets.MaxLostLastValues, "<="));
        md.AppendLine();

        if (report.BaselineRatio is { } ratio)
        {
            md.AppendLine(Inv($"Frames per CPU-second: {ratio:F1}x the baseline's."));
        }

        if (batched is not null && one is not null)
        {
            md.AppendLine(Inv($"Frames per CPU-second: {Share(d.FramesPerCpuSecond, batched.FramesPerCpuSecond)} of the raw batched ceiling, {Share(d.FramesPerCpuSecond, one.FramesPerCpuSecond)} of one frame per write."));
        }

        if (same is not null)
        {
            md.AppendLine(Inv($"Raw TCP at the daemon's {same.FramesPerWrite} frames per write: {N0(same.FramesPerCpuSecond)} frames per CPU-second ({F3(same.CpuUsPerFrame)} µs per frame); the daemon did {Share(d.FramesPerCpuSecond, same.FramesPerCpuSecond)} of it."));
        }

        if (paced is not null)
        {
            md.AppendLine(Inv($"Raw TCP paced like the daemon (one thread, {N0(paced.WritesPerSecond)} writes a second of {paced.FramesPerWrite} frames, reached {N0(paced.FramesPerSecond)} frames/s): {N0(paced.FramesPerCpuSecond)} frames per CPU-second ({F3(paced.CpuUsPerFrame)} µs per frame); the daemon did {Share(d.FramesPerCpuSecond, paced.FramesPerCpuSecond)} of it. Flat-out raw keeps its reader busy; paced writes wake it, as the daemon's do (not a budget, the like-for-like reading)."));
        }

        if (d.Consistency is { Examples.Count: > 0 } consistency)
        {
            md.AppendLine(Inv($"Lost or wrong last values, first of them: {string.Join("; ", consistency.Examples)}"));
        }

        md.AppendLine();
        foreach (var check in report.Checks)
        {
            md.AppendLine(Inv($"- {(check.Passed ? "PASS" : "FAIL")} {check.Metric}: {check.Actual:0.###} {check.Comparison} {check.Limit:0.###}"));
        }
    }

    private static void Row(StringBuilder md, string metric, string daemon, string baseline, string one, string batched, string budget) =>
        md.AppendLine(Inv($"| {metric} | {daemon} | {baseline} | {one} | {batched} | {budget} |"));

    private static string Budget(double? limit, string comparison) => limit is { } l ? Inv($"{comparison} {l:0.###}") : None;

    private static string Share(double value, double of) => of > 0 ? Inv($"{value / of * 100:0.#}%") : None;

    private static string N0(double value) => Inv($"{value:N0}");

    private static string F1(double value) => Inv($"{value:F1}");

    private static string F2(double value) => Inv($"{value:F2}");

    private static string F3(double value) => Inv($"{value:F3}");

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
