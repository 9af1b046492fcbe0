using System.Diagnostics.Metrics;

namespace PriceDaemon.Pipeline;

/// <summary>
/// The daemon's counters. Hot paths bump plain fields (each written by one stage, or with Interlocked
/// where several threads write); the meter reads them only when a listener collects, so metrics cost
/// nothing per tick when nobody is looking.
/// </summary>
public sealed class PipelineMetrics
{
    public const string MeterName = "PriceDaemon";

    internal long TicksReceived;
    internal long TicksCoalesced;
    internal long UpdatesEmitted;
    internal long FramesSent;
    internal long FramesConflated;
    internal long SessionsOpened;
    internal long SessionsClosed;
    internal long SlowConsumersClosed;
    internal long ClientErrors;

    public PipelineMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        meter.CreateObservableCounter("pricedaemon.ticks.received", () => Volatile.Read(ref TicksReceived), "{tick}", "Ticks read from the ingest channel");
        meter.CreateObservableCounter("pricedaemon.ticks.coalesced", () => Volatile.Read(ref TicksCoalesced), "{tick}", "Ticks merged into a pending update inside a throttle window");
        meter.CreateObservableCounter("pricedaemon.updates.emitted", () => Volatile.Read(ref UpdatesEmitted), "{update}", "Price updates serialized and fanned out");
        meter.CreateObservableCounter("pricedaemon.frames.sent", () => Volatile.Read(ref FramesSent), "{frame}", "Price frames written to sockets");
        meter.CreateObservableCounter("pricedaemon.frames.conflated", () => Volatile.Read(ref FramesConflated), "{frame}", "Pending frames replaced by a newer one for a socket that was behind");
        meter.CreateObservableCounter("pricedaemon.sessions.opened", () => Volatile.Read(ref SessionsOpened), "{session}", "WebSocket sessions accepted");
        meter.CreateObservableUpDownCounter("pricedaemon.sessions.active", () => Volatile.Read(ref SessionsOpened) - Volatile.Read(ref SessionsClosed), "{session}", "WebSocket sessions open now");
        meter.CreateObservableCounter("pricedaemon.sessions.slow_consumer_closed", () => Volatile.Read(ref SlowConsumersClosed), "{session}", "Sessions closed because they stayed behind");
        meter.CreateObservableCounter("pricedaemon.client.errors", () => Volatile.Read(ref ClientErrors), "{message}", "Client messages answered with an error frame");
    }
}
