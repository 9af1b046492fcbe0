namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>What one server (the daemon or the baseline) did under a scenario's load.</summary>
internal sealed record LoadResult
{
    public string Server { get; init; } = "";

    public int Connections { get; init; }

    public int Subscriptions { get; init; }

    public int Instruments { get; init; }

    /// <summary>From the first connect to the last subscription ack.</summary>
    public double ConnectSeconds { get; init; }

    public double MeasuredSeconds { get; init; }

    public long FramesDelivered { get; init; }

    public double FramesPerSecond => MeasuredSeconds > 0 ? FramesDelivered / MeasuredSeconds : 0;

    public long LatencySamples { get; init; }

    public double P50Ms { get; init; }

    public double P99Ms { get; init; }

    public double P999Ms { get; init; }

    public double MaxMs { get; init; }

    /// <summary>The server's user + system CPU over the measured window.</summary>
    public double CpuSeconds { get; init; }

    /// <summary>Of <see cref="CpuSeconds"/>, the runtime's background JIT thread's (tiered re-compilation after start).</summary>
    public double JitCpuSeconds { get; init; }

    /// <summary>Seconds from connected to the window's start: the scenario's warm-up, plus waiting for that JIT thread to go quiet.</summary>
    public double WarmupSeconds { get; init; }

    /// <summary>The load generator's own CPU over the same window: when it nears the cores left over, latency is partly the client's.</summary>
    public double ClientCpuSeconds { get; init; }

    public double ClientCores => MeasuredSeconds > 0 ? ClientCpuSeconds / MeasuredSeconds : 0;

    public double CpuUsPerFrame => FramesDelivered > 0 ? CpuSeconds * 1e6 / FramesDelivered : 0;

    /// <summary>The same without the background JIT thread's CPU: what frames cost once compiling is done.</summary>
    public double CpuUsPerFrameWithoutJit => FramesDelivered > 0 ? (CpuSeconds - JitCpuSeconds) * 1e6 / FramesDelivered : 0;

    public double FramesPerCpuSecond => CpuSeconds > 0 ? FramesDelivered / CpuSeconds : 0;

    public double RssMiB { get; init; }

    /// <summary>Resident memory added by the connected, subscribed clients, per connection.</summary>
    public double KiBPerIdleConnection { get; init; }

    /// <summary>
    /// The same growth read again at the end of the measured window (warm-up and window after the connect): the idle
    /// figure once a storm's aftermath (a background collection, decommit) has had time to land, not 2 s after it.
    /// </summary>
    public double KiBPerIdleConnectionAtEnd { get; init; }

    public ConsistencyResult? Consistency { get; init; }

    /// <summary>The daemon's own send counters over the measured window; null for the baseline.</summary>
    public DaemonCounters? Counters { get; init; }
}

/// <summary>The same frame bytes written to plain TCP sockets: what the machine does with no WebSocket server at all.</summary>
/// <param name="WritesPerSecond">0 when written flat out from one thread per core; else one thread paced to this rate.</param>
internal sealed record CeilingResult(string Mode, int FramesPerWrite, int Connections, long Frames, double Seconds, double CpuSeconds, double WritesPerSecond = 0)
{
    /// <summary>Written at a set rate, as a server writes its clients' updates, rather than as fast as the kernel takes them.</summary>
    public bool Paced => WritesPerSecond > 0;

    public double FramesPerSecond => Seconds > 0 ? Frames / Seconds : 0;

    public double CpuUsPerFrame => Frames > 0 ? CpuSeconds * 1e6 / Frames : 0;

    public double FramesPerCpuSecond => CpuSeconds > 0 ? Frames / CpuSeconds : 0;
}

/// <summary>One budget of a scenario against its measured figure.</summary>
internal sealed record BudgetCheck(string Metric, double Actual, string Comparison, double Limit, bool Passed);

internal sealed record ScenarioReport
{
    public Scenario Scenario { get; init; } = new();

    public LoadResult Daemon { get; init; } = new();

    public LoadResult? Baseline { get; init; }

    public IReadOnlyList<CeilingResult> Ceiling { get; init; } = [];

    /// <summary>The daemon's delivered frames per CPU-second over the baseline's.</summary>
    public double? BaselineRatio => Baseline is { FramesPerCpuSecond: > 0 } b ? Daemon.FramesPerCpuSecond / b.FramesPerCpuSecond : null;

    public IReadOnlyList<BudgetCheck> Checks { get; init; } = [];

    /// <summary>How this run departed from the scenario as written, e.g. a machine limit.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    public bool Passed => Checks.All(static c => c.Passed);
}

internal sealed record MachineInfo(int Cores, string CpuModel, string Os, string Runtime)
{
    public static MachineInfo Current()
    {
        var model = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(static l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        return new MachineInfo(
            Environment.ProcessorCount,
            model ?? "unknown",
            System.Runtime.InteropServices.RuntimeInformation.OSDescription,
            System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription);
    }
}

internal sealed record E2eReport(MachineInfo Machine, string Command, DateTimeOffset Started, IReadOnlyList<ScenarioReport> Scenarios)
{
    public bool Passed => Scenarios.All(static s => s.Passed);
}
