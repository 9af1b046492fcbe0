using System.ComponentModel.DataAnnotations;

namespace PriceDaemon.Feeds.Replay;

/// <summary><c>Feed:Replay</c>: plays a tick file (CSV or JSON lines) as the feed.</summary>
public sealed class ReplayFeedOptions
{
    /// <summary>The tick file: <c>.jsonl</c>/<c>.ndjson</c> is JSON lines, anything else CSV (<c>instrument_key,timestamp,last_price,volume</c>).</summary>
    public string Path { get; set; } = "";

    /// <summary>1 = the gaps between ticks as recorded, 10 = ten times faster, 0 = as fast as the pipeline takes them.</summary>
    [Range(0.0, 1_000_000.0)]
    public double Speed { get; set; } = 1;

    /// <summary>Start again from the first line at the end of the file.</summary>
    public bool Loop { get; set; }
}

/// <summary><c>Feed:Record</c>: appends every tick the feed produces to a file that <c>Feed:Source=Replay</c> can play.</summary>
public sealed class RecordOptions
{
    /// <summary>Empty = no recording. Same formats as <see cref="ReplayFeedOptions.Path"/>.</summary>
    public string Path { get; set; } = "";
}
