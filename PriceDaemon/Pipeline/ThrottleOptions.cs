using System.ComponentModel.DataAnnotations;

namespace PriceDaemon.Pipeline;

public sealed class ThrottleOptions
{
    public const string Section = "Throttle";

    /// <summary>
    /// At most one update per instrument per window (default 250 ms); ticks inside the window are merged.
    /// 0 emits every tick. A larger value costs freshness and saves client bandwidth.
    /// </summary>
    [Range(0, 60_000)]
    public int MinIntervalMs { get; set; } = 250;
}
