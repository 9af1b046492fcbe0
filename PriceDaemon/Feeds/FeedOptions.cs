using System.ComponentModel.DataAnnotations;

namespace PriceDaemon.Feeds;

public sealed class FeedOptions
{
    public const string Section = "Feed";

    /// <summary>
    /// <c>Simulated</c> (default), <c>Upstox</c> (Market Data Feed V3), <c>Replay</c> (a tick file), <c>Nats</c> (an edge
    /// fed by a publishing daemon over NATS, see <c>Nats:*</c>) or <c>None</c>
    /// (no feed: ticks come only from code that writes the ingest channel, as tests do).
    /// </summary>
    [Required]
    [RegularExpression("^(Simulated|Upstox|Replay|Nats|None)$", ErrorMessage = "must be Simulated, Upstox, Replay, Nats or None")]
    public string Source { get; set; } = "Simulated";

    /// <summary>CSV of the instrument universe; empty uses the embedded NIFTY 50 list.</summary>
    public string InstrumentsPath { get; set; } = "";

    /// <summary>Ticks buffered between feeds and the throttle stage; feeds wait when it is full (nothing is dropped).</summary>
    [Range(16, 16_777_216)]
    public int IngestCapacity { get; set; } = 65_536;

    /// <summary>
    /// Write <c>data.timestamp</c> with microseconds (<c>...00.123456Z</c>) instead of milliseconds. For latency
    /// measurement; every ISO 8601 parser reads both.
    /// </summary>
    public bool MicrosecondTimestamps { get; set; }

    /// <summary>
    /// A live feed that delivers nothing (no data, no ping) for this long while the market is open is declared
    /// stalled and reconnected. 0 turns the watchdog off.
    /// </summary>
    [Range(0, 86_400)]
    public int StallSeconds { get; set; } = 30;

    public SimulatedFeedOptions Simulated { get; set; } = new();

    public Upstox.UpstoxFeedOptions Upstox { get; set; } = new();

    public Replay.ReplayFeedOptions Replay { get; set; } = new();

    public Replay.RecordOptions Record { get; set; } = new();
}

public sealed class SimulatedFeedOptions
{
    [Range(1, 3_600_000)]
    public int MinIntervalMs { get; set; } = 1000;

    [Range(1, 3_600_000)]
    public int MaxIntervalMs { get; set; } = 2000;

    [Range(0.0, 50.0)]
    public double MaxMovePercent { get; set; } = 0.5;

    /// <summary>Fixes the random sequence so a run can be reproduced; empty picks a random seed.</summary>
    public int? Seed { get; set; }

    /// <summary>Generated instruments (<c>NSE_EQ|SYN0000001</c>, ...) added to the universe for load runs.</summary>
    [Range(0, 1_000_000)]
    public int SyntheticInstruments { get; set; }

    /// <summary>
    /// Demos and tests of the stale path: after this many seconds of ticking the feed drops out (reports
    /// <c>disconnected</c> and sends nothing) for <see cref="OutageSeconds"/>, then reconnects. 0 = never.
    /// </summary>
    [Range(0, 86_400)]
    public int OutageEverySeconds { get; set; }

    /// <summary>
    /// About one tick in this many (per instrument) carries a burst of traded volume, 40,000-120,000 shares, so the
    /// unusual-volume alerts show on the embedded default (default 3000: with NIFTY 50 at a tick a second or two,
    /// a burst somewhere every minute or two). 0 = never. Drawn from a random sequence of its own: the price walk of
    /// a seed is the same with or without bursts.
    /// </summary>
    [Range(0, 100_000_000)]
    public int VolumeBurstEveryTicks { get; set; } = 3000;

    /// <summary>Length of each simulated outage; 0 = never.</summary>
    [Range(0, 86_400)]
    public int OutageSeconds { get; set; }

    /// <summary>
    /// Ticks in groups, as Upstox delivers them: this many feed messages a second, each carrying
    /// <see cref="InstrumentsPerMessageMin"/> to <see cref="InstrumentsPerMessageMax"/> instruments picked at random,
    /// all received at the same moment. The per-instrument intervals are not used then. 0 (default): every
    /// instrument on its own schedule.
    /// </summary>
    [Range(0, 1_000)]
    public int MessagesPerSecond { get; set; }

    [Range(1, 1_000_000)]
    public int InstrumentsPerMessageMin { get; set; } = 50;

    [Range(1, 1_000_000)]
    public int InstrumentsPerMessageMax { get; set; } = 200;

    /// <summary>
    /// Build an order book with every tick of every instrument, watched or not: for an ingest whose edges serve depth
    /// over NATS (the ingest cannot see their clients). False (default): books only for instruments this daemon's own
    /// clients watch, so depth costs nothing while nobody looks.
    /// </summary>
    public bool BooksForAll { get; set; }

    /// <summary>Rules across keys, as <c>Simulated:Key: ...</c> (the validator puts the section in front).</summary>
    internal IEnumerable<string> Problems()
    {
        if (MinIntervalMs > MaxIntervalMs)
        {
            yield return "Simulated:MinIntervalMs: must not exceed Feed:Simulated:MaxIntervalMs";
        }

        if (InstrumentsPerMessageMin > InstrumentsPerMessageMax)
        {
            yield return "Simulated:InstrumentsPerMessageMin: must not exceed Feed:Simulated:InstrumentsPerMessageMax";
        }
    }
}
