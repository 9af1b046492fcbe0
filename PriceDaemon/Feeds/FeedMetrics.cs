using System.Diagnostics.Metrics;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Feeds;

/// <summary>
/// What the feeds drop, skip or retry, on the daemon's meter. Plain fields bumped with Interlocked; the meter
/// reads them only when a listener collects.
/// </summary>
public sealed class FeedMetrics
{
    internal long UnknownInstruments;
    internal long MalformedFrames;
    internal long Connects;
    internal long Disconnects;
    internal long AuthFailures;
    internal long Stalls;
    internal long UpstreamRejected;
    internal long ReplaySkippedLines;
    internal long RecordDropped;
    internal long Recorded;

    public FeedMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(PipelineMetrics.MeterName);
        meter.CreateObservableCounter("pricedaemon.feed.unknown_instruments", () => Volatile.Read(ref UnknownInstruments), "{tick}", "Feed prices for instrument keys not in the instrument universe, ignored");
        meter.CreateObservableCounter("pricedaemon.feed.malformed_frames", () => Volatile.Read(ref MalformedFrames), "{frame}", "Upstream frames that did not decode, skipped");
        meter.CreateObservableCounter("pricedaemon.feed.connects", () => Volatile.Read(ref Connects), "{connect}", "Upstream connections established");
        meter.CreateObservableCounter("pricedaemon.feed.disconnects", () => Volatile.Read(ref Disconnects), "{disconnect}", "Upstream connections lost or failed to open");
        meter.CreateObservableCounter("pricedaemon.feed.auth_failures", () => Volatile.Read(ref AuthFailures), "{failure}", "Upstream authorizations refused (401/403)");
        meter.CreateObservableCounter("pricedaemon.feed.stalls", () => Volatile.Read(ref Stalls), "{stall}", "Upstream connections dropped by the stall watchdog");
        meter.CreateObservableCounter("pricedaemon.feed.upstream_rejected", () => Volatile.Read(ref UpstreamRejected), "{subscription}", "Client subscriptions rejected because the upstream instrument cap is reached");
        meter.CreateObservableCounter("pricedaemon.feed.replay_skipped_lines", () => Volatile.Read(ref ReplaySkippedLines), "{line}", "Replay file lines skipped (malformed or unknown instrument)");
        meter.CreateObservableCounter("pricedaemon.feed.recorded", () => Volatile.Read(ref Recorded), "{tick}", "Ticks appended to Feed:Record:Path");
        meter.CreateObservableCounter("pricedaemon.feed.record_dropped", () => Volatile.Read(ref RecordDropped), "{tick}", "Ticks not recorded because the recorder fell behind");
    }
}
