using System.Text.Json;
using PriceDaemon.Benchmarks.EndToEnd;

namespace PriceDaemon.Tests.Benchmarks;

public sealed class ReportWriterTests
{
    private static readonly E2eReport Report = new(
        new MachineInfo(2, "AMD EPYC", "Debian 12", ".NET 10"),
        "dotnet run -c Release --project PriceDaemon.Benchmarks -- e2e --scenario campus-peak",
        new DateTimeOffset(2026, 1, 19, 10, 30, 0, TimeSpan.Zero),
        [
            new ScenarioReport
            {
                Scenario = new Scenario { Name = "campus-peak", Description = "1,000 clients", SubscriptionsPerClient = 50, TickMinMs = 150, TickMaxMs = 250, ThrottleMs = 100, LatencyNote = "total", Budgets = new ScenarioBudgets { P99Ms = 5 } },
                Daemon = new LoadResult { Connections = 1000, Instruments = 500, MeasuredSeconds = 10, FramesDelivered = 2_500_000, CpuSeconds = 5, JitCpuSeconds = 1, WarmupSeconds = 14.5, P99Ms = 6.5, Consistency = new ConsistencyResult(50_000, 49_000, 1_000, 0, 0, []), Counters = new DaemonCounters(2_500_000, 1_000_000, 2_000, 1_000_000) },
                Baseline = new LoadResult { MeasuredSeconds = 10, FramesDelivered = 400_000, CpuSeconds = 8 },
                Ceiling = [new CeilingResult("paced", 1, 1000, 1_500_000, 5, 3, WritesPerSecond: 300_000), new CeilingResult("one frame per write", 1, 1000, 2_000_000, 5, 4), new CeilingResult("batched", 16, 1000, 16_000_000, 5, 2)],
                Checks = [new BudgetCheck("p99 latency (ms)", 6.5, "<=", 5, false), new BudgetCheck("lost last values", 0, "<=", 0, true)],
                Notes = ["connections capped"],
            },
        ]);

    [Test]
    public void Markdown_RendersFiguresBudgetsRatiosAndVerdicts()
    {
        var markdown = ReportWriter.Markdown(Report);

        Assert.That(markdown, Does.Contain("Machine: 2 cores, AMD EPYC"));
        Assert.That(markdown, Does.Contain("| delivered frames/s | 250,000 | 40,000 | 400,000 | 3,200,000 | – |"));
        Assert.That(markdown, Does.Contain("| latency p99 (ms) | 6.500 | 0.000 | – | – | <= 5 |"));
        Assert.That(markdown, Does.Contain("| lost last values | 0 of 50,000 |"));
        Assert.That(markdown, Does.Contain("| frames per socket write | 2.50 | 1 | 1 | 16 | – |"));
        Assert.That(markdown, Does.Contain("| server CPU per delivered frame without the JIT thread (µs) | 1.600 |"));
        Assert.That(markdown, Does.Contain("| background JIT thread CPU in the window (ms, share of the server's) | 1000, 20 % | 0, 0 % |"));
        Assert.That(markdown, Does.Contain("| warm-up before the window (s) | 14.5 |"));
        Assert.That(markdown, Does.Contain("| in-daemon latency, oldest frame per write, mean (ms) | 2.000 | – | – | – | – |"));
        Assert.That(markdown, Does.Contain("Frames per CPU-second: 10.0x the baseline's."));
        Assert.That(markdown, Does.Contain("Frames per CPU-second: 6.3% of the raw batched ceiling, 100% of one frame per write."));
        Assert.That(markdown, Does.Contain("Raw TCP paced like the daemon (one thread, 300,000 writes a second of 1 frames, reached 300,000 frames/s): 500,000 frames per CPU-second (2.000 µs per frame); the daemon did 100% of it."));
        Assert.That(markdown, Does.Contain("Note: connections capped."));
        Assert.That(markdown, Does.Contain("- FAIL p99 latency (ms): 6.5 <= 5"));
        Assert.That(markdown, Does.Contain("- PASS lost last values: 0 <= 0"));
        Assert.That(markdown, Does.EndWith("BUDGETS MISSED: see the FAIL lines above." + Environment.NewLine));
    }

    [Test]
    public void Json_CarriesDerivedFigures_ForTools()
    {
        using var json = JsonDocument.Parse(ReportWriter.Json(Report));
        var scenario = json.RootElement.GetProperty("scenarios")[0];

        Assert.That(
            (scenario.GetProperty("scenario").GetProperty("name").GetString(),
             scenario.GetProperty("daemon").GetProperty("framesPerSecond").GetDouble(),
             scenario.GetProperty("daemon").GetProperty("cpuUsPerFrame").GetDouble(),
             scenario.GetProperty("baselineRatio").GetDouble(),
             scenario.GetProperty("passed").GetBoolean(),
             json.RootElement.GetProperty("passed").GetBoolean()),
            Is.EqualTo(("campus-peak", 250_000.0, 2.0, 10.0, false, false)));
    }
}
