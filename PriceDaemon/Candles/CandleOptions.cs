using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace PriceDaemon.Candles;

/// <summary>
/// The <c>Candles</c> section: OHLCV bars built from every tick, the exchange session they align to, and how long
/// each interval's closed bars are kept in their own LiteDB file.
/// </summary>
public sealed class CandleOptions
{
    public const string Section = "Candles";

    /// <summary>Builds, stores and serves candles (default true). Off: the channel answers unknown_channel, REST 404.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// The LiteDB file of bars. Empty (the default): <c>candles.db</c> beside <c>Storage:Path</c>. A file of its own:
    /// price storage is reworked separately, and a flush of bars never waits behind a flush of prices.
    /// </summary>
    public string Path { get; set; } = "";

    /// <summary>Session open, exchange local time <c>HH:mm</c> (default NSE's 09:15). Intraday bars are aligned to it.</summary>
    public string SessionOpen { get; set; } = "09:15";

    /// <summary>Session close, exchange local time <c>HH:mm</c> (default 15:30). The last bar of a day ends here.</summary>
    public string SessionClose { get; set; } = "15:30";

    /// <summary>The exchange's offset from UTC in minutes (default 330, IST). India has no daylight saving time.</summary>
    [Range(-720, 840)]
    public int UtcOffsetMinutes { get; set; } = 330;

    /// <summary>
    /// Whether ticks outside the session make bars (on the same grid, the day bar ending at local midnight). Unset:
    /// true for the simulated feed, which trades around the clock so the embedded default always charts; false for
    /// any other feed, so pre-open and post-close trades stay out of the bars as exchange charts keep them out.
    /// </summary>
    public bool? IncludeOutsideSession { get; set; }

    /// <summary>Most closed bars a subscribe may ask for in <c>history</c> (default 1000, at most 1000).</summary>
    [Range(0, 1000)]
    public int MaxHistory { get; set; } = 1000;

    /// <summary>How often closed and forming bars are written, in one transaction (default 1000 ms): the most a kill -9 loses.</summary>
    [Range(10, 60_000)]
    public int FlushIntervalMs { get; set; } = 1000;

    /// <summary>
    /// How long after its end a bar with no later trade is closed (default 1000 ms), by the exchange clock (the newest
    /// tick's exchange time, advanced by the daemon's clock since): a late tick within it still counts.
    /// </summary>
    [Range(0, 600_000)]
    public int CloseGraceMs { get; set; } = 1000;

    /// <summary>Trading days of 1-minute bars kept (default 10).</summary>
    [Range(1, 36_500)]
    public int RetentionDays1m { get; set; } = 10;

    /// <summary>Trading days of 5-minute bars kept (default 30).</summary>
    [Range(1, 36_500)]
    public int RetentionDays5m { get; set; } = 30;

    /// <summary>Trading days of 15-minute bars kept (default 60).</summary>
    [Range(1, 36_500)]
    public int RetentionDays15m { get; set; } = 60;

    /// <summary>Trading days of 1-hour bars kept (default 250, about a year).</summary>
    [Range(1, 36_500)]
    public int RetentionDays1h { get; set; } = 250;

    /// <summary>Trading days of daily bars kept (default 500, about two years).</summary>
    [Range(1, 36_500)]
    public int RetentionDays1d { get; set; } = 500;

    /// <summary>Retention in trading days of interval <paramref name="index"/> (<see cref="CandleIntervals"/>).</summary>
    public int RetentionDays(int index) => index switch
    {
        0 => RetentionDays1m,
        1 => RetentionDays5m,
        2 => RetentionDays15m,
        3 => RetentionDays1h,
        _ => RetentionDays1d,
    };

    internal static bool TryParseTimeOfDay(string text, out TimeSpan time) =>
        TimeSpan.TryParseExact(text, @"hh\:mm", CultureInfo.InvariantCulture, out time) && time < TimeSpan.FromDays(1);

    internal IEnumerable<string> Problems()
    {
        var open = TryParseTimeOfDay(SessionOpen, out var o);
        var close = TryParseTimeOfDay(SessionClose, out var c);
        if (!open)
        {
            yield return $"SessionOpen: '{SessionOpen}' is not a time of day HH:mm";
        }

        if (!close)
        {
            yield return $"SessionClose: '{SessionClose}' is not a time of day HH:mm";
        }

        if (open && close && c <= o)
        {
            yield return $"SessionClose: '{SessionClose}' must be after SessionOpen '{SessionOpen}'";
        }
    }
}
