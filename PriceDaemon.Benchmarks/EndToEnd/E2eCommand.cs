using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>
/// <c>e2e [--scenario NAME|all] [--budgets PATH] [--out DIR] [--daemon PATH] [--measure-seconds N] [--no-compare] [--no-jit-settle] [--alerts N]</c>:
/// runs each scenario against the real daemon process (and, where the scenario asks, the baseline server
/// and the raw ceiling), prints the table, writes JSON and Markdown reports, and exits 1 when a budget is missed.
/// </summary>
internal static class E2eCommand
{
    private const int ExitBudgetMissed = 1;
    private const int ExitUsage = 2;
    private const int RawCeilingFramesPerWrite = 16;

    // Enough for the wide scenario's 20,000 client sockets here and as many accepted ones in the daemon.
    private const ulong OpenFilesNeeded = 65_536;

    // Descriptors each process needs besides the sockets under test (assemblies, pipes, epoll, listeners).
    private const int OpenFilesReserve = 512;

    private static readonly TimeSpan SettleTime = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan MinConsistencyGrace = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan MaxConsistencyGrace = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan CeilingDuration = TimeSpan.FromSeconds(5);

    // The window starts once the runtime's background JIT thread has gone quiet (below JitQuiet of CPU over JitQuietFor;
    // it compiles in bursts, so one quiet second says little), or MaxJitSettle after the scenario's warm-up at the latest:
    // tiered re-compilation went on 20-30 s after connect in market-open on the AMD machine, a fifth to a quarter of the
    // daemon's CPU in a window that began 8 s in. seed, at 670 frames a second, reaches its tier-up call counts slowly:
    // on a quiet machine its JIT was still compiling 40 s in (p99 2.2-3.6 ms with 110-180 ms of JIT in the window,
    // 1.1-1.3 ms with none), hence the longer cap.
    private static readonly TimeSpan JitQuiet = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan JitQuietFor = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan MaxJitSettle = TimeSpan.FromSeconds(120);

    public static async Task<int> RunAsync(string[] args)
    {
        LoadGeneratorSockets.Configure();
        var root = RepositoryRoot();
        DeployedRuntime.Load(root);
        var budgetsPath = Option(args, "--budgets") ?? Path.Combine(root, "config", "latency-budgets.json");
        var outDir = Path.GetFullPath(Option(args, "--out") ?? Path.Combine(root, "BenchmarkDotNet.Artifacts", "e2e"));
        var daemonDll = Option(args, "--daemon") ?? Path.Combine(root, "PriceDaemon", "bin", "Release", "net10.0", "PriceDaemon.dll");
        var selected = Option(args, "--scenario") ?? "all";
        var measureOverride = Option(args, "--measure-seconds") is { } m ? int.Parse(m, CultureInfo.InvariantCulture) : (int?)null;
        var compare = !args.Contains("--no-compare");
        var settleJit = !args.Contains("--no-jit-settle");
        // Clients on an edge fed over NATS by an ingest daemon: the difference to a plain run is the NATS hop.
        var viaNats = args.Contains("--via-nats");
        // Price alerts armed in the daemon for the run (Alerts:SyntheticAlerts): run with 100000 and without, alternated.
        _alerts = Option(args, "--alerts") is { } a ? int.Parse(a, CultureInfo.InvariantCulture) : 0;

        var file = ScenarioFile.Parse(await File.ReadAllTextAsync(budgetsPath).ConfigureAwait(false));
        var scenarios = file.Scenarios.Where(s => selected == "all" || s.Name == selected).ToList();
        var problems = scenarios.SelectMany(static s => s.Validate()).ToList();
        if (scenarios.Count == 0)
        {
            problems.Add($"no scenario '{selected}' in {budgetsPath}; it has {string.Join(", ", file.Scenarios.Select(static s => s.Name))}");
        }

        if (!File.Exists(daemonDll))
        {
            problems.Add($"no daemon build at {daemonDll}; build it first: dotnet build -c Release PriceDaemon");
        }

        if (problems.Count > 0)
        {
            problems.ForEach(static p => Console.Error.WriteLine($"e2e: {p}"));
            return ExitUsage;
        }

        var openFiles = NativeMethods.RaiseOpenFileLimit(OpenFilesNeeded);
        Console.WriteLine($"e2e: open-file limit {openFiles}; daemon {daemonDll}; reports in {outDir}");
        Directory.CreateDirectory(outDir);
        var workDir = Directory.CreateDirectory(Path.Combine(outDir, "work")).FullName;

        var started = DateTimeOffset.UtcNow;
        var reports = new List<ScenarioReport>();
        foreach (var scenario in scenarios)
        {
            var s = measureOverride is { } seconds ? scenario with { MeasureSeconds = seconds } : scenario;
            s = s with { SettleJit = s.SettleJit && settleJit };
            var notes = new List<string>();
            var maxClients = (int)Math.Min(int.MaxValue, openFiles) - OpenFilesReserve;
            if (s.Clients > maxClients)
            {
                // Without CAP_SYS_RESOURCE the hard limit cannot be raised; per-connection figures still hold.
                notes.Add($"connections capped at {maxClients:N0} (of {s.Clients:N0}) by this machine's open-file hard limit of {openFiles:N0}");
                s = s with { Clients = maxClients };
            }

            if (viaNats)
            {
                notes.Add("clients on an edge daemon (Feed:Source=Nats) fed by an ingest daemon over a local nats-server; latency includes the NATS hop");
            }

            var result = viaNats
                ? await RunViaNatsAsync(s, daemonDll, workDir).ConfigureAwait(false)
                : await RunScenarioAsync(s, daemonDll, workDir, compare && s.Compare).ConfigureAwait(false);
            reports.Add(result with { Notes = [.. notes, .. result.Notes] });
        }

        var report = new E2eReport(MachineInfo.Current(), "dotnet run -c Release --project PriceDaemon.Benchmarks -- e2e " + string.Join(' ', args), started, reports);
        var markdown = ReportWriter.Markdown(report);
        var stem = Path.Combine(outDir, $"e2e-{selected}-{started:yyyyMMdd-HHmmss}");
        await File.WriteAllTextAsync(stem + ".md", markdown).ConfigureAwait(false);
        await File.WriteAllTextAsync(stem + ".json", ReportWriter.Json(report)).ConfigureAwait(false);
        Console.WriteLine();
        Console.WriteLine(markdown);
        Console.WriteLine($"e2e: wrote {stem}.md and {stem}.json");
        return report.Passed ? 0 : ExitBudgetMissed;
    }

    private static async Task<ScenarioReport> RunScenarioAsync(Scenario s, string daemonDll, string workDir, bool compare)
    {
        Console.WriteLine($"e2e: {s.Name}: {s.Clients:N0} clients x {s.SubscriptionsPerClient} subscriptions");
        var daemonArgs = DaemonArgs(s);
        var daemon = await MeasureAsync("PriceDaemon", daemonDll, daemonArgs, s, workDir, checkConsistency: true).ConfigureAwait(false);

        LoadResult? baseline = null;
        var ceiling = new List<CeilingResult>();
        if (compare)
        {
            var self = typeof(E2eCommand).Assembly.Location;
            string[] baselineArgs = ["baseline-server", $"--instruments={daemon.Instruments}", $"--tick-min-ms={s.TickMinMs}", $"--tick-max-ms={s.TickMaxMs}"];
            baseline = await MeasureAsync("baseline", self, baselineArgs, s, workDir, checkConsistency: false).ConfigureAwait(false);
            Console.WriteLine($"e2e: {s.Name}: raw TCP ceiling over {s.Clients} sockets");
            // One frame per write, many, and the daemon's own frames per write: the CPU budget compares like with like.
            var same = Budgets.SameFramesPerWrite(daemon);
            foreach (var framesPerWrite in new[] { 1, RawCeilingFramesPerWrite, same }.Distinct())
            {
                ceiling.Add(await RawCeiling.MeasureAsync(self, daemon.Connections, framesPerWrite, CeilingDuration).ConfigureAwait(false));
            }

            // The same writes at the daemon's own pace: flat out, raw's reader never sleeps, so no write pays for waking it.
            if (daemon.Counters?.FramesPerWrite is double fpw && fpw > 0 && daemon.FramesPerSecond > 0)
            {
                ceiling.Add(await RawCeiling.MeasureAsync(self, daemon.Connections, same, CeilingDuration, daemon.FramesPerSecond / fpw).ConfigureAwait(false));
            }
        }

        var report = new ScenarioReport { Scenario = s, Daemon = daemon, Baseline = baseline, Ceiling = ceiling };
        return report with
        {
            Checks = Budgets.Check(s.Budgets, daemon, report.BaselineRatio, ceiling, baseline),
            Notes = Budgets.AgainstCeiling(s.Budgets, daemon, baseline, ceiling.FirstOrDefault(static c => !c.Paced && c.FramesPerWrite == 1)),
        };
    }

    private static async Task<ScenarioReport> RunViaNatsAsync(Scenario s, string daemonDll, string workDir)
    {
        Console.WriteLine($"e2e: {s.Name} via NATS: {s.Clients:N0} clients x {s.SubscriptionsPerClient} subscriptions on an edge");
        var port = FreePort();
        var natsDir = Directory.CreateDirectory(Path.Combine(workDir, $"{s.Name}-nats")).FullName;
        using var nats = Process.Start(new ProcessStartInfo("nats-server", ["-js", "-a", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-sd", natsDir])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        }) ?? throw new InvalidOperationException("nats-server did not start (apt-get install nats-server)");
        try
        {
            await WaitForPortAsync(port).ConfigureAwait(false);
            var url = $"--Nats:Url=nats://127.0.0.1:{port}";
            var ingestDir = Directory.CreateDirectory(Path.Combine(workDir, $"{s.Name}-ingest")).FullName;
            await using var ingest = await ServerProcess.StartAsync(daemonDll, ingestDir, [.. DaemonArgs(s), "--Nats:Publish=true", url]).ConfigureAwait(false);
            // The edge serves the clients; it re-encodes each tick with the ingest's microsecond timestamp.
            var edge = await MeasureAsync("PriceDaemon edge", daemonDll, [.. DaemonArgs(s), "--Feed:Source=Nats", url], s, workDir, checkConsistency: true).ConfigureAwait(false);
            var report = new ScenarioReport { Scenario = s, Daemon = edge, Baseline = null, Ceiling = [] };
            return report with { Checks = Budgets.Check(s.Budgets, edge, report.BaselineRatio) };
        }
        finally
        {
            nats.Kill();
            await nats.WaitForExitAsync().ConfigureAwait(false);
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task WaitForPortAsync(int port)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            try
            {
                using var probe = new System.Net.Sockets.TcpClient();
                await probe.ConnectAsync(System.Net.IPAddress.Loopback, port).ConfigureAwait(false);
                return;
            }
            catch (System.Net.Sockets.SocketException)
            {
                await Task.Delay(50).ConfigureAwait(false);
            }
        }

        throw new InvalidOperationException($"nats-server did not listen on port {port}");
    }

    private static int _alerts;

    private static string[] DaemonArgs(Scenario s) =>
        [
            $"--Alerts:SyntheticAlerts={_alerts}",
            "--Feed:MicrosecondTimestamps=true",
            "--Feed:Simulated:Seed=1",
            $"--Feed:Simulated:SyntheticInstruments={s.SyntheticInstruments}",
            $"--Feed:Simulated:MinIntervalMs={s.TickMinMs}",
            $"--Feed:Simulated:MaxIntervalMs={s.TickMaxMs}",
            $"--Feed:Simulated:MessagesPerSecond={s.MessagesPerSecond}",
            $"--Feed:Simulated:InstrumentsPerMessageMin={s.InstrumentsPerMessageMin}",
            $"--Feed:Simulated:InstrumentsPerMessageMax={s.InstrumentsPerMessageMax}",
            $"--Throttle:MinIntervalMs={s.ThrottleMs}",
            $"--Limits:MaxSubscriptionsPerConnection={s.MaxSubscriptionsPerConnection}",
            "--Serilog:MinimumLevel:Default=Warning",
        ];

    private static async Task<LoadResult> MeasureAsync(string name, string dll, string[] args, Scenario s, string workDir, bool checkConsistency)
    {
        // A fresh folder per server: the daemon's storage must not warm-start from another scenario's prices.
        var serverDir = Path.Combine(workDir, $"{s.Name}-{name}");
        if (Directory.Exists(serverDir))
        {
            Directory.Delete(serverDir, recursive: true);
        }

        Directory.CreateDirectory(serverDir);
        await using var server = await ServerProcess.StartAsync(dll, serverDir, args).ConfigureAwait(false);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var keys = await LoadRun.GetInstrumentKeysAsync(http, server.BaseUri).ConfigureAwait(false);
        await Task.Delay(SettleTime).ConfigureAwait(false);
        var rssBefore = server.RssBytes;

        var connecting = Stopwatch.StartNew();
        await using var run = await LoadRun.ConnectAsync(server.BaseUri, keys, s.Clients, s.SubscriptionsPerClient, CancellationToken.None, s.Channel).ConfigureAwait(false);
        var connectSeconds = connecting.Elapsed.TotalSeconds;
        await Task.Delay(SettleTime).ConfigureAwait(false);
        var rssConnected = server.RssBytes;
        Console.WriteLine($"e2e: {s.Name}/{name}: {run.Connections:N0} connections subscribed in {connectSeconds:F1} s; measuring {s.MeasureSeconds} s");

        var warmup = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(s.WarmupSeconds)).ConfigureAwait(false);
        if (s.SettleJit)
        {
            await JitSettledAsync(server).ConfigureAwait(false);
        }

        var warmupSeconds = warmup.Elapsed.TotalSeconds;
        // Scraped outside the CPU window, so the scrape is not billed to the frames.
        var countersBefore = await DaemonCounters.ScrapeAsync(http, server.BaseUri).ConfigureAwait(false);
        var jitBefore = server.JitThreadCpuTimes;
        var cpuBefore = server.CpuTime;
        var clientCpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        run.StartMeasuring();
        await Task.Delay(TimeSpan.FromSeconds(s.MeasureSeconds)).ConfigureAwait(false);
        run.StopMeasuring();
        var measured = clock.Elapsed.TotalSeconds;
        var cpu = (server.CpuTime - cpuBefore).TotalSeconds;
        var jit = ProcFs.ThreadCpuSince(jitBefore, server.JitThreadCpuTimes).TotalSeconds;
        var clientCpu = (Process.GetCurrentProcess().TotalProcessorTime - clientCpuBefore).TotalSeconds;
        var rss = server.RssBytes;
        var countersAfter = await DaemonCounters.ScrapeAsync(http, server.BaseUri).ConfigureAwait(false);

        ConsistencyResult? consistency = null;
        if (checkConsistency && s.Channel == "price")
        {
            var daemonPrices = await GetPricesAsync(http, server.BaseUri).ConfigureAwait(false);
            // A frame still in flight is not lost: the slowest delivery seen bounds how long one can be.
            var grace = TimeSpan.FromMicroseconds(2 * run.Latency.MaxMicroseconds);
            await Task.Delay(grace < MinConsistencyGrace ? MinConsistencyGrace : grace > MaxConsistencyGrace ? MaxConsistencyGrace : grace).ConfigureAwait(false);
            run.Freeze();
            // A receive loop may be inside a frame as the flag flips; give it time to finish that frame.
            await Task.Delay(TimeSpan.FromMilliseconds(50)).ConfigureAwait(false);
            consistency = Consistency.Check(daemonPrices, run.LastValues());
        }

        if (run.ProtocolErrors > 0 || run.OutOfOrderFrames > 0 || run.ClosedConnections > 0)
        {
            Console.WriteLine($"e2e: {s.Name}/{name}: {run.ProtocolErrors} protocol errors (first: {run.FirstProtocolError}), {run.OutOfOrderFrames} out-of-order frames, {run.ClosedConnections} connections closed by the server");
        }

        var latency = run.Latency;
        return new LoadResult
        {
            Server = name,
            Connections = run.Connections,
            Subscriptions = run.Connections * s.SubscriptionsPerClient,
            Instruments = keys.Count,
            ConnectSeconds = connectSeconds,
            MeasuredSeconds = measured,
            FramesDelivered = run.FramesMeasured,
            LatencySamples = latency.Count,
            P50Ms = latency.Percentile(50) / 1000.0,
            P99Ms = latency.Percentile(99) / 1000.0,
            P999Ms = latency.Percentile(99.9) / 1000.0,
            MaxMs = latency.MaxMicroseconds / 1000.0,
            CpuSeconds = cpu,
            JitCpuSeconds = jit,
            WarmupSeconds = warmupSeconds,
            ClientCpuSeconds = clientCpu,
            RssMiB = rss / 1024.0 / 1024.0,
            KiBPerIdleConnection = (rssConnected - rssBefore) / 1024.0 / run.Connections,
            KiBPerIdleConnectionAtEnd = (rss - rssBefore) / 1024.0 / run.Connections,
            Consistency = consistency,
            Counters = countersAfter is not null && countersBefore is not null ? countersAfter.Since(countersBefore) : null,
        };
    }

    /// <summary>Returns once the server's background JIT thread used less than <see cref="JitQuiet"/> over the last <see cref="JitQuietFor"/>, or after <see cref="MaxJitSettle"/>.</summary>
    private static async Task JitSettledAsync(ServerProcess server)
    {
        var deadline = Stopwatch.StartNew();
        // One reading a second; the quiet span is the last JitQuietFor of them.
        var readings = new Queue<Dictionary<int, TimeSpan>>();
        readings.Enqueue(server.JitThreadCpuTimes);
        while (deadline.Elapsed < MaxJitSettle)
        {
            await Task.Delay(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            var now = server.JitThreadCpuTimes;
            readings.Enqueue(now);
            if (readings.Count > JitQuietFor.TotalSeconds + 1)
            {
                readings.Dequeue();
            }

            if (readings.Count > JitQuietFor.TotalSeconds && ProcFs.ThreadCpuSince(readings.Peek(), now) < JitQuiet)
            {
                return;
            }
        }
    }

    private static async Task<Dictionary<string, PriceVersion>> GetPricesAsync(HttpClient http, Uri baseUri)
    {
        using var document = JsonDocument.Parse(await http.GetStringAsync(new Uri(baseUri, "/api/prices")).ConfigureAwait(false));
        return document.RootElement.EnumerateObject().ToDictionary(
            static p => p.Name,
            static p => new PriceVersion(p.Value.GetProperty("seq").GetInt64(), p.Value.GetProperty("last_price").GetDouble()),
            StringComparer.Ordinal);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "PriceDaemon.sln")))
            {
                return dir.FullName;
            }
        }

        return Directory.GetCurrentDirectory();
    }

    private static string? Option(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }
}
