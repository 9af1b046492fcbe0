using System.Diagnostics.Metrics;
using PriceDaemon.Feeds;

namespace PriceDaemon.Pipeline;

/// <summary>
/// The daemon's counters. Hot paths bump plain fields (each written by one stage, or with Interlocked
/// where several threads write); the meter reads them only when a listener collects, so metrics cost
/// nothing per tick when nobody is looking.
/// </summary>
public sealed class PipelineMetrics
{
    public const string MeterName = "PriceDaemon";

    internal Histogram<double> SendLatency { get; }

    internal long TicksReceived;
    internal long TicksCoalesced;
    internal long UpdatesEmitted;
    internal long FramesSent;
    internal long SocketWrites;
    internal long FramesConflated;
    internal long SessionsOpened;
    // Accepted price-socket handshakes by the path they took: the connection middleware (DirectUpgrade) or
    // Kestrel's endpoint (PriceSocketEndpoint, e.g. a handshake on a connection a proxy reused).
    internal long HandshakesDirect;
    internal long HandshakesEndpoint;
    internal long SessionsClosed;
    internal long SlowConsumersClosed;
    internal long SlowConsumersWarned;
    internal long ClientErrors;
    internal long SendErrors;
    // The throttle's frame pool (see PriceFramePool): written by the throttle thread only.
    internal long PoolFramesCreated;
    internal long PoolFramesDropped;
    internal long PoolFramesRetired;
    // Set by the throttle when it pools frames: the oldest reader's age is read from it at collection time.
    internal FrameEpochs? PoolReaders;

    /// <param name="feedStatus">Reported as a gauge when given (the host always does).</param>
    /// <param name="index">Subscription totals are read from it at collection time when given.</param>
    public PipelineMetrics(IMeterFactory meterFactory, FeedStatus? feedStatus = null, SubscriptionIndex? index = null)
    {
        var meter = meterFactory.Create(MeterName);
        // Per socket write, not per frame: the age of the oldest price in the write, from the daemon's
        // receipt of its tick to the socket write completing. Throttle waits are included by design.
        SendLatency = meter.CreateHistogram<double>("pricedaemon.send.latency", "s", "Tick receipt to socket write completion, per socket write");
        meter.CreateObservableCounter("pricedaemon.ticks.received", () => Volatile.Read(ref TicksReceived), "{tick}", "Ticks read from the ingest channel");
        meter.CreateObservableCounter("pricedaemon.ticks.coalesced", () => Volatile.Read(ref TicksCoalesced), "{tick}", "Ticks merged into a pending update inside a throttle window");
        meter.CreateObservableCounter("pricedaemon.updates.emitted", () => Volatile.Read(ref UpdatesEmitted), "{update}", "Price updates serialized and fanned out");
        meter.CreateObservableCounter("pricedaemon.frames.sent", () => Volatile.Read(ref FramesSent), "{frame}", "Price frames written to sockets");
        meter.CreateObservableCounter("pricedaemon.socket.writes", () => Volatile.Read(ref SocketWrites), "{write}", "Socket writes carrying price frames; frames.sent over this is frames per write");
        meter.CreateObservableCounter("pricedaemon.frames.conflated", () => Volatile.Read(ref FramesConflated), "{frame}", "Pending frames replaced by a newer one for a socket that was behind");
        meter.CreateObservableCounter("pricedaemon.sessions.opened", () => Volatile.Read(ref SessionsOpened), "{session}", "WebSocket sessions accepted");
        meter.CreateObservableCounter("pricedaemon.sockets.handshakes", ObserveHandshakes, "{handshake}", "Price-socket handshakes accepted, by path: direct (the connection's first request) or endpoint (through Kestrel's HTTP pipeline)");
        meter.CreateObservableUpDownCounter("pricedaemon.sessions.active", () => Volatile.Read(ref SessionsOpened) - Volatile.Read(ref SessionsClosed), "{session}", "WebSocket sessions open now");
        meter.CreateObservableCounter("pricedaemon.sessions.slow_consumer_closed", () => Volatile.Read(ref SlowConsumersClosed), "{session}", "Sessions closed because they stayed behind");
        meter.CreateObservableCounter("pricedaemon.sessions.slow_consumer_warned", () => Volatile.Read(ref SlowConsumersWarned), "{session}", "Times a socket that stayed behind was warned and downsampled (Limits:SlowConsumerWarnSeconds)");
        meter.CreateObservableCounter("pricedaemon.client.errors", () => Volatile.Read(ref ClientErrors), "{message}", "Client messages answered with an error frame");
        meter.CreateObservableCounter("pricedaemon.send.errors", () => Volatile.Read(ref SendErrors), "{error}", "Socket writes that failed");
        meter.CreateObservableCounter("pricedaemon.pool.frames.created", () => Volatile.Read(ref PoolFramesCreated), "{frame}", "Pooled price frames made since start; flat in steady state");
        meter.CreateObservableCounter("pricedaemon.pool.frames.dropped", () => Volatile.Read(ref PoolFramesDropped), "{frame}", "Pooled price frames left to the collector because more than twice the target waited for reuse");
        meter.CreateObservableGauge("pricedaemon.pool.frames.retired", () => Volatile.Read(ref PoolFramesRetired), "{frame}", "Pooled price frames replaced in the cache and waiting for reuse");
        meter.CreateObservableGauge("pricedaemon.pool.oldest_reader_age", () => Volatile.Read(ref PoolReaders)?.OldestReaderAge() ?? 0, "{epoch}", "Frames retired since the oldest reader now inside a read scope entered it; 0 when none is");
        if (index is not null)
        {
            meter.CreateObservableUpDownCounter("pricedaemon.subscriptions", index.Total, "{subscription}", "Instrument subscriptions over all sockets");
        }

        if (feedStatus is not null)
        {
            meter.CreateObservableGauge("pricedaemon.feed.connected", () => feedStatus.Current.State == FeedState.Connected ? 1 : 0, "{status}", "1 while the feed is connected, else 0");
        }
    }

    private Measurement<long>[] ObserveHandshakes() =>
    [
        new(Volatile.Read(ref HandshakesDirect), new KeyValuePair<string, object?>("path", "direct")),
        new(Volatile.Read(ref HandshakesEndpoint), new KeyValuePair<string, object?>("path", "endpoint")),
    ];
}
