using PriceDaemon.Benchmarks.Allocations;
using PriceDaemon.Benchmarks.EndToEnd;

namespace PriceDaemon.Tests.Benchmarks;

/// <summary>What the harness reads: BenchmarkDotNet results, /proc, and the budget files shipped in config/.</summary>
public sealed class HarnessInputsTests
{
    private const string BriefReport = """
        {"Title":"x","Benchmarks":[
          {"Type":"FanOutBenchmarks","Method":"Publish_KeepingUpSessions","Parameters":"Sessions=10","Memory":{"BytesAllocatedPerOperation":0}},
          {"Type":"FrameEncodingBenchmarks","Method":"Encode","Parameters":"","Memory":{"BytesAllocatedPerOperation":400}},
          {"Type":"NewBenchmarks","Method":"Run","Parameters":"","Memory":{"BytesAllocatedPerOperation":8}},
          {"Type":"FailedBenchmarks","Method":"Run","Parameters":""}
        ]}
        """;

    [Test]
    public void DeployedRuntime_ReadsEveryEnvironmentLineOfTheShippedUnit()
    {
        var unit = File.ReadAllText(Path.Combine(RepositoryRoot(), "config", "systemd", "pricedaemon.service"));
        var variables = DeployedRuntime.Parse(unit);

        Assert.That(variables, Does.Contain(new KeyValuePair<string, string>("DOTNET_GCgen0size", "0x1000000")));
        Assert.That(variables, Does.Contain(new KeyValuePair<string, string>("DOTNET_NOLOGO", "1")));
        Assert.That(variables, Does.Contain(new KeyValuePair<string, string>("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit", "0")));
        var supervisor = File.ReadAllText(Path.Combine(RepositoryRoot(), "config", "supervisor", "pricedaemon.conf"));
        Assert.That(supervisor, Does.Contain("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=\"0\""), "both service files set the same runtime settings");
        Assert.That(DeployedRuntime.Parse("# Environment=A=1\nEnvironment=B=2 C=x=y\n"), Is.EqualTo(new[] { KeyValuePair.Create("B", "2"), KeyValuePair.Create("C", "x=y") }));
        Assert.Throws<FormatException>(() => DeployedRuntime.Parse("Environment=NOVALUE\n"));
    }

    [Test]
    public void AllocationCheck_ReportsOverBudgetAndUnbudgetedBenchmarks()
    {
        var budgets = AllocationCheck.ParseBudgets("""
            {"budgets":[
              {"benchmark":"FanOutBenchmarks.Publish_KeepingUpSessions","maxBytesPerOp":0,"why":"no allocation"},
              {"benchmark":"FrameEncodingBenchmarks.Encode","maxBytesPerOp":320,"why":"one frame"}
            ]}
            """);

        var violations = AllocationCheck.Check(budgets, AllocationCheck.ParseResults(BriefReport));

        Assert.That(violations, Is.EqualTo(new[]
        {
            "FrameEncodingBenchmarks.Encode allocated 400 B/op, budget 320 B/op (one frame)",
            "NewBenchmarks.Run allocated 8 B/op and has no budget in config/allocation-budgets.json",
        }));
    }

    [Test]
    public void AllocationCheck_ShippedBudgets_CoverEveryMicroBenchmark()
    {
        var budgets = AllocationCheck.ParseBudgets(File.ReadAllText(Path.Combine(RepositoryRoot(), "config", "allocation-budgets.json")));
        var benchmarks = typeof(AllocationCheck).Assembly.GetTypes()
            .SelectMany(static t => t.GetMethods())
            .Where(static m => m.IsDefined(typeof(BenchmarkDotNet.Attributes.BenchmarkAttribute), false))
            .Select(static m => $"{m.DeclaringType!.Name}.{m.Name}");

        Assert.That(budgets.Select(static b => b.Benchmark), Is.EquivalentTo(benchmarks));
    }

    [Test]
    public void Scenarios_ShippedBudgetsParseAndValidate()
    {
        var file = ScenarioFile.Parse(File.ReadAllText(Path.Combine(RepositoryRoot(), "config", "latency-budgets.json")));

        Assert.That(file.Scenarios.Select(static s => s.Name), Is.EqualTo(new[] { "seed", "campus-peak", "market-open", "wide", "upstox-groups", "depth" }));
        Assert.That(file.Scenarios.SelectMany(static s => s.Validate()), Is.Empty);
        var machineRelative = new ScenarioBudgets { P99Ms = 5, P99WriteFloorFactor = 1.5, MinRawCpuRatio = 0.85, MaxLostLastValues = 0 };
        Assert.That(file.Scenarios[1].Budgets, Is.EqualTo(machineRelative with { MinBaselineRatio = 5 }), "campus-peak");
        Assert.That(file.Scenarios[2].Budgets, Is.EqualTo(machineRelative), "market-open: the same form");
        Assert.That((file.Scenarios[4].MessagesPerSecond, file.Scenarios[4].InstrumentsPerMessageMin, file.Scenarios[4].InstrumentsPerMessageMax, file.Scenarios[4].Budgets),
            Is.EqualTo((5, 50, 200, machineRelative)), "upstox-groups: grouped ticks, the same budgets");
    }

    [Test]
    public void Scenario_Validate_RefusesTicksFasterThanTheThrottleWindow()
    {
        var scenario = new Scenario { Name = "x", Clients = 1, SubscriptionsPerClient = 1, TickMinMs = 100, TickMaxMs = 200, ThrottleMs = 250 };
        Assert.That(scenario.Validate().Single(), Does.StartWith("x: ticks every 100 ms are faster than the 250 ms throttle window"));
    }

    [Test]
    public void ProcFs_ParsesCpuTicks_WhenCommandNameHasSpacesAndParentheses()
    {
        const string stat = "4242 (dotnet (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 30 0 100 300000000 20000 18446744073709551615";
        Assert.That(ProcFs.ParseCpuTicks(stat), Is.EqualTo(1234 + 567));
    }

    [Test]
    public void ProcFs_ThreadCpuTime_CountsOnlyTheNamedThreads()
    {
        using var stop = new ManualResetEventSlim();
        var spinner = new Thread(() =>
        {
            while (!stop.IsSet)
            {
                Thread.SpinWait(1000);
            }
        })
        { IsBackground = true, Name = "procfs-spin-test" };
        spinner.Start();
        try
        {
            var pid = Environment.ProcessId;
            var start = ProcFs.ThreadCpuTimes(pid, "procfs-spin");
            Assert.That(start.Keys, Has.Count.EqualTo(1), "one thread of that name");
            // The kernel accounts CPU in clock ticks: spin until the named thread has one more.
            SpinWait.SpinUntil(() => ProcFs.ThreadCpuSince(start, ProcFs.ThreadCpuTimes(pid, "procfs-spin")) > TimeSpan.Zero, TimeSpan.FromSeconds(30));
            var later = ProcFs.ThreadCpuTimes(pid, "procfs-spin");
            Assert.That(ProcFs.ThreadCpuSince(start, later), Is.GreaterThan(TimeSpan.Zero));
            Assert.That(later.Values.Single(), Is.LessThanOrEqualTo(ProcFs.CpuTime(pid)));
            Assert.That(ProcFs.ThreadCpuTimes(pid, "no-thread-is-called-this"), Is.Empty);

            // A thread that ended between two readings counts nothing (not minus what it had); a new one counts whole.
            var ended = new Dictionary<int, TimeSpan> { [1] = TimeSpan.FromSeconds(3) };
            var started = new Dictionary<int, TimeSpan> { [2] = TimeSpan.FromMilliseconds(40) };
            Assert.That(ProcFs.ThreadCpuSince(ended, started), Is.EqualTo(TimeSpan.FromMilliseconds(40)));
        }
        finally
        {
            stop.Set();
            spinner.Join();
        }
    }

    [Test]
    public void ProcFs_ParsesVmRss()
    {
        const string status = "Name:\tdotnet\nVmPeak:\t  300000 kB\nVmRSS:\t   96832 kB\nThreads:\t20\n";
        Assert.That(ProcFs.ParseRssKiB(status), Is.EqualTo(96_832));
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (!File.Exists(Path.Combine(dir.FullName, "PriceDaemon.sln")))
        {
            dir = dir.Parent ?? throw new DirectoryNotFoundException("PriceDaemon.sln not found above the test directory");
        }

        return dir.FullName;
    }
}
