using System.Text.Json;
using System.Text.Json.Serialization;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>Budgets a scenario is held to; a null budget is reported, not checked.</summary>
internal sealed record ScenarioBudgets
{
    public double? P99Ms { get; init; }

    public double? CpuUsPerFrame { get; init; }

    public int? MaxLostLastValues { get; init; }

    public double? KiBPerIdleConnection { get; init; }

    /// <summary>
    /// At least this many times the baseline's frames per CPU-second, where the baseline is not itself bound by
    /// the machine's cost of one loopback write per frame (then the check does not apply, and the report says so).
    /// </summary>
    public double? MinBaselineRatio { get; init; }

    /// <summary>
    /// The daemon's frames per CPU-second at least this share of raw TCP's (no server at all) at the same frames
    /// per write as the daemon achieved, measured in the same run: a CPU budget against the machine's own limit.
    /// </summary>
    public double? MinRawCpuRatio { get; init; }

    /// <summary>
    /// p99 ≤ max(<see cref="P99Ms"/>, this × F), where F is the time one core needs to write once to every socket at
    /// raw TCP's one-frame-per-write cost (sockets × µs per write): below F no server can visit each socket once.
    /// </summary>
    public double? P99WriteFloorFactor { get; init; }
}

/// <summary>One load shape from <c>config/latency-budgets.json</c>.</summary>
internal sealed record Scenario
{
    public string Name { get; init; } = "";

    public string Description { get; init; } = "";

    public int Clients { get; init; }

    public int SubscriptionsPerClient { get; init; }

    /// <summary>Generated instruments added to the embedded NIFTY 50 (<c>Feed:Simulated:SyntheticInstruments</c>).</summary>
    public int SyntheticInstruments { get; init; }

    public int TickMinMs { get; init; }

    public int TickMaxMs { get; init; }

    public int ThrottleMs { get; init; }

    public int MaxSubscriptionsPerConnection { get; init; } = 100;

    /// <summary>
    /// What the latency budget holds, in the report's words. The wire carries only the tick's time, so the
    /// harness measures total latency (throttle wait included); <see cref="Validate"/> keeps ticks no faster
    /// than the throttle window, where no tick waits and total latency is the pipeline's own.
    /// </summary>
    public string LatencyNote { get; init; } = "";

    public int WarmupSeconds { get; init; } = 3;

    /// <summary>
    /// After the warm-up, wait (up to 120 s) until the server's background JIT thread goes quiet (under 10 ms of CPU in 5 s) before the window starts
    /// (default true; <c>--no-jit-settle</c> turns it off): the window measures the steady state, not start-up compiling.
    /// </summary>
    public bool SettleJit { get; init; } = true;

    public int MeasureSeconds { get; init; } = 20;

    /// <summary>Run the guide-style baseline server and the raw TCP ceiling under the same load.</summary>
    public bool Compare { get; init; }

    public ScenarioBudgets Budgets { get; init; } = new();

    /// <summary>
    /// Ticks in groups, as Upstox delivers them (the daemon's Feed:Simulated:MessagesPerSecond): this many messages a
    /// second of <see cref="InstrumentsPerMessageMin"/> to <see cref="InstrumentsPerMessageMax"/> instruments each.
    /// The tick intervals then only drive the baseline, which ticks per instrument.
    /// </summary>
    public int MessagesPerSecond { get; init; }

    public int InstrumentsPerMessageMin { get; init; } = 50;

    public int InstrumentsPerMessageMax { get; init; } = 200;

    /// <summary>
    /// What the clients subscribe to: <c>price</c> (default), or the order book's <c>depth</c> (5 levels) or <c>book</c>
    /// (30). A book channel has no REST last value to compare with, so its scenario checks no lost last values, and
    /// the baseline has no books, so it runs without <see cref="Compare"/>.
    /// </summary>
    public string Channel { get; init; } = "price";

    public IEnumerable<string> Validate()
    {
        if (Clients < 1 || SubscriptionsPerClient < 1)
        {
            yield return $"{Name}: clients and subscriptionsPerClient must be at least 1";
        }

        if (TickMinMs < 1 || TickMaxMs < TickMinMs)
        {
            yield return $"{Name}: tickMinMs must be at least 1 and not above tickMaxMs";
        }

        if (TickMinMs < ThrottleMs)
        {
            yield return $"{Name}: ticks every {TickMinMs} ms are faster than the {ThrottleMs} ms throttle window; the harness can only measure total latency, so keep tickMinMs >= throttleMs";
        }

        if (SubscriptionsPerClient > MaxSubscriptionsPerConnection)
        {
            yield return $"{Name}: subscriptionsPerClient exceeds maxSubscriptionsPerConnection";
        }

        if (MessagesPerSecond > 0 && 1000 / MessagesPerSecond < ThrottleMs)
        {
            yield return $"{Name}: a message every {1000 / MessagesPerSecond} ms is faster than the {ThrottleMs} ms throttle window";
        }

        if (Channel is not ("price" or "depth" or "book"))
        {
            yield return $"{Name}: channel must be price, depth or book";
        }
        else if (Channel != "price" && (Compare || Budgets.MaxLostLastValues is not null))
        {
            yield return $"{Name}: a {Channel} scenario has no baseline and no REST last values: compare must be false and maxLostLastValues unset";
        }

        if (MeasureSeconds < 1)
        {
            yield return $"{Name}: measureSeconds must be at least 1";
        }
    }
}

internal sealed record ScenarioFile
{
    public IReadOnlyList<Scenario> Scenarios { get; init; } = [];

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static ScenarioFile Parse(string json) =>
        JsonSerializer.Deserialize<ScenarioFile>(json, JsonOptions) ?? throw new InvalidDataException("latency budgets file is empty");
}
