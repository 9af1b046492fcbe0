using System.ComponentModel.DataAnnotations;

namespace PriceDaemon.Alerts;

/// <summary>
/// The <c>Alerts</c> section: users' price alerts (evaluated on every tick, delivered through the notification inbox)
/// and unusual-volume alerts. On by default: an alert costs nothing until one is set.
/// </summary>
public sealed class AlertOptions
{
    public const string Section = "Alerts";

    /// <summary>Price alerts over the socket and <c>/api/alerts</c>; off: the actions answer <c>alerts_unavailable</c>.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// The LiteDB file of users' alerts. Empty (the default): <c>alerts.db</c> beside <c>Storage:Path</c>. A file of
    /// its own: an alert's state is committed before its notification goes out, never behind a price flush.
    /// </summary>
    public string Path { get; set; } = "";

    /// <summary>Alerts one user (or one anonymous connection) may hold, armed or fired (default 50).</summary>
    [Range(1, 10_000)]
    public int MaxPerUser { get; set; } = 50;

    /// <summary>
    /// A <c>repeat</c> alert re-arms only after the price moves back past its threshold by this much, in percent of
    /// the threshold (default 0.5): a price hovering on the line fires once, not on every tick.
    /// </summary>
    [Range(0.0, 50.0)]
    public double HysteresisPercent { get; set; } = 0.5;

    /// <summary>
    /// Fired alerts waiting for the writer (persist, then notify), default 10000. When full, an alert due to fire stays
    /// armed and fires on a later tick: the tick thread never waits.
    /// </summary>
    [Range(16, 1_000_000)]
    public int QueueCapacity { get; set; } = 10_000;

    /// <summary>
    /// Creates and deletes per user (or anonymous connection) per minute, socket and HTTP together (default 60); past
    /// it the request is refused with <c>rate_limited</c>. Each one is a write: this keeps one client from filling the
    /// writer's queue that every user's fires go through. Listing is free. 0 = no limit.
    /// </summary>
    [Range(0, 1_000_000)]
    public int ChangesPerMinute { get; set; } = 60;

    /// <summary>The note's longest length in characters (default 200).</summary>
    [Range(0, 2000)]
    public int MaxNoteLength { get; set; } = 200;

    /// <summary>
    /// Load runs only: this many alerts armed at start on the instruments in turn, 5-50 % away from each reference
    /// price (so the run's prices seldom reach them), belonging to no user and never stored. Default 0. For measuring
    /// what armed alerts cost the tick path (<c>e2e --alerts 100000</c>).
    /// </summary>
    [Range(0, 10_000_000)]
    public int SyntheticAlerts { get; set; }

    /// <summary>Unusual-volume alerts.</summary>
    public VolumeAlertOptions Volume { get; set; } = new();
}

/// <summary>
/// The <c>Alerts:Volume</c> section: an instrument's traded volume in the current minute against the median of its
/// last <see cref="BaselineMinutes"/> one-minute volumes.
/// </summary>
public sealed class VolumeAlertOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>Fires when this minute's volume exceeds this many times the baseline median (default 3).</summary>
    [Range(1.0, 1000.0)]
    public double Multiple { get; set; } = 3.0;

    /// <summary>...and is at least this many shares (default 10000): a quiet stock's 30 shares against 8 is no news.</summary>
    [Range(0, long.MaxValue)]
    public long MinShares { get; set; } = 10_000;

    /// <summary>Minutes in the baseline (default 20).</summary>
    [Range(3, 240)]
    public int BaselineMinutes { get; set; } = 20;

    /// <summary>
    /// Minutes of history needed before an instrument can alert (default 5): a median of one or two minutes after a
    /// start is no baseline. At most <see cref="BaselineMinutes"/>.
    /// </summary>
    [Range(1, 240)]
    public int MinBaselineMinutes { get; set; } = 5;

    /// <summary>At most one alert per instrument per this many seconds (default 300).</summary>
    [Range(0, 86_400)]
    public int CooldownSeconds { get; set; } = 300;
}
