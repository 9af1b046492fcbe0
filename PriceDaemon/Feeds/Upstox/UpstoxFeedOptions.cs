using System.ComponentModel.DataAnnotations;

namespace PriceDaemon.Feeds.Upstox;

/// <summary><c>Feed:Upstox</c>: the Upstox Market Data Feed V3 connection.</summary>
public sealed class UpstoxFeedOptions
{
    /// <summary>Upstox's REST base; tests point it at a loopback fake.</summary>
    [Required]
    public string BaseUrl { get; set; } = "https://api.upstox.com";

    /// <summary>
    /// The access token. Prefer <see cref="TokenFile"/> or the environment (<c>PRICEDAEMON_Feed__Upstox__AccessToken</c>)
    /// over a config file. Never logged.
    /// </summary>
    public string AccessToken { get; set; } = "";

    /// <summary>A file holding the token (first line); re-read when it changes, so a daily token is swapped without a restart. Wins over <see cref="AccessToken"/>.</summary>
    public string TokenFile { get; set; } = "";

    /// <summary>How often the token file is checked for a new token while authentication is failing.</summary>
    [Range(10, 3_600_000)]
    public int TokenRecheckMs { get; set; } = 5000;

    /// <summary><c>ltpc</c> (price, time, quantity, close; default) or <c>full</c> (adds the day's volume, costs Upstox's smaller cap).</summary>
    [Required]
    [RegularExpression("^(ltpc|full)$", ErrorMessage = "must be ltpc or full")]
    public string Mode { get; set; } = "ltpc";

    /// <summary>Instruments kept subscribed upstream whether or not a client wants them (an index on the board, say).</summary>
    public List<string> AlwaysSubscribe { get; set; } = [];

    /// <summary>
    /// Instruments subscribed upstream at most; 0 = Upstox's cap for <see cref="Mode"/> on one connection
    /// (5000 for ltpc, 2000 for full). Client subscriptions beyond it are rejected with <c>upstream_limit</c>.
    /// </summary>
    [Range(0, 100_000)]
    public int MaxInstruments { get; set; }

    /// <summary>
    /// Instruments held upstream in <c>full</c> mode at most, for clients of the <c>depth</c> channel (5 levels).
    /// Upstox allows 1500 <c>full</c> instruments on a connection that mixes modes. Beyond it a depth subscription is
    /// rejected with <c>upstream_limit</c>.
    /// </summary>
    [Range(0, 100_000)]
    public int MaxDepthInstruments { get; set; } = 1500;

    /// <summary>
    /// Instruments held upstream in <c>full_d30</c> mode at most, for clients of the <c>book</c> channel (30 levels).
    /// Upstox allows 50 (and only on its Plus plan). Beyond it a book subscription is rejected with <c>upstream_limit</c>.
    /// </summary>
    [Range(0, 100_000)]
    public int MaxBookInstruments { get; set; } = 50;

    /// <summary>An instrument stays subscribed upstream this long after its last client left, so a page reload does not churn.</summary>
    [Range(0, 86_400)]
    public int UnsubscribeDelaySeconds { get; set; } = 60;

    /// <summary>Client subscription changes are gathered this long into one upstream request.</summary>
    [Range(0, 60_000)]
    public int DebounceMs { get; set; } = 250;

    /// <summary>Reconnect backoff: the first delay is drawn from [min, 2×min], doubling up to max, with full jitter.</summary>
    [Range(1, 3_600_000)]
    public int ReconnectMinMs { get; set; } = 1000;

    [Range(1, 3_600_000)]
    public int ReconnectMaxMs { get; set; } = 60_000;

    /// <summary>Authorize request and WebSocket handshake, each.</summary>
    [Range(1, 600)]
    public int ConnectTimeoutSeconds { get; set; } = 10;

    /// <summary>The largest feed frame accepted (an initial feed for thousands of instruments in full mode is large).</summary>
    [Range(65_536, 268_435_456)]
    public int MaxFrameBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Upstox's per-connection cap for a mode when it is the only mode in use.</summary>
    internal int EffectiveMaxInstruments => MaxInstruments > 0 ? MaxInstruments : Mode == "full" ? 2000 : 5000;
}
