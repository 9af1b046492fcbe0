using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Sockets.Send;

namespace PriceDaemon.Sockets;

/// <summary>What every session shares, resolved once instead of per connection.</summary>
internal sealed class SessionServices
{
    public SessionServices(
        InstrumentRegistry instruments,
        SubscriptionIndex index,
        PriceCache cache,
        FeedStatus feedStatus,
        PipelineMetrics metrics,
        IOptions<LimitsOptions> limits,
        TimeProvider time,
        ILoggerFactory loggers,
        IUpstreamInterest upstream,
        SendPump sendPump,
        Push.NotificationInbox? inbox = null,
        Push.AnnouncementBoard? announcements = null,
        Push.TopicCache? topics = null,
        DepthStage? depth = null,
        Candles.CandleBook? candles = null,
        Candles.CandleService? candleHistory = null,
        IOptions<Candles.CandleOptions>? candleOptions = null,
        Alerts.AlertBook? alerts = null,
        Alerts.VolumeWatch? volume = null)
    {
        Depth = depth;
        Volume = volume;
        Alerts = alerts;
        Candles = candles;
        CandleHistory = candleHistory;
        CandleMaxHistory = candleOptions?.Value.MaxHistory ?? 0;
        Topics = topics;
        Inbox = inbox;
        Announcements = announcements;
        SendPump = sendPump;
        Upstream = upstream;
        Instruments = instruments;
        Index = index;
        Cache = cache;
        FeedStatus = feedStatus;
        Metrics = metrics;
        Limits = limits.Value;
        Time = time;
        Flow = new Send.FlowLimits(Limits, time);
        Logger = loggers.CreateLogger("PriceDaemon.Sockets.PriceSession");
        // Created once: Serilog's logger factory does not cache, so a logger per connection would cost about
        // a kilobyte each (its own event-id cache).
        EndpointLogger = loggers.CreateLogger("PriceDaemon.Sockets.PriceSocketEndpoint");
    }

    /// <summary>Told of every subscription a client adds or drops (Upstox subscribes upstream only to what clients want).</summary>
    public IUpstreamInterest Upstream { get; }

    /// <summary>Users' unacked notifications; null when pushes are off (no <c>Push:PublisherKey</c>).</summary>
    public Push.NotificationInbox? Inbox { get; }

    /// <summary>The configured topics; null when pushes are off.</summary>
    public Push.TopicCache? Topics { get; }

    /// <summary>The depth and book channels; null only where a test builds sessions without them.</summary>
    public DepthStage? Depth { get; }

    /// <summary>The candle channel's bars and last values; null when candles are off.</summary>
    public Candles.CandleBook? Candles { get; }

    /// <summary>Closed bars for a subscribe's history; null when candles are off.</summary>
    public Candles.CandleService? CandleHistory { get; }

    /// <summary>Most closed bars one candles subscribe gets (<c>Candles:MaxHistory</c>).</summary>
    public int CandleMaxHistory { get; }

    /// <summary>Announcements in force; null when pushes are off.</summary>
    public Push.AnnouncementBoard? Announcements { get; }

    /// <summary>Price alerts; null when <c>Alerts:Enabled</c> is false.</summary>
    public Alerts.AlertBook? Alerts { get; }

    /// <summary>Unusual-volume alerts; null when <c>Alerts:Volume:Enabled</c> is false.</summary>
    public Alerts.VolumeWatch? Volume { get; }

    /// <summary>The threads that write every session's ready frames.</summary>
    public SendPump SendPump { get; }

    public InstrumentRegistry Instruments { get; }

    public SubscriptionIndex Index { get; }

    public PriceCache Cache { get; }

    public FeedStatus FeedStatus { get; }

    public PipelineMetrics Metrics { get; }

    public LimitsOptions Limits { get; }

    /// <summary>The slow-consumer thresholds in timestamp ticks, from <see cref="Limits"/>.</summary>
    public FlowLimits Flow { get; }

    public TimeProvider Time { get; }

    /// <summary>
    /// The keep-alive's clock (SocketSender.KeepAlive.cs): always the real one in the daemon, whatever <see cref="Time"/>
    /// is. A ping is a question to a real peer over the real network; a test that moves a fake clock an hour on
    /// cannot make a real client answer within it, and the keep-alive used to run on real timers too.
    /// </summary>
    public TimeProvider KeepAliveTime { get; init; } = TimeProvider.System;

    public ILogger Logger { get; }

    public ILogger EndpointLogger { get; }
}
