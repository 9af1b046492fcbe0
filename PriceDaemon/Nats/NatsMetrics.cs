using System.Diagnostics.Metrics;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Nats;

/// <summary>What the NATS hop publishes, drops and receives, on the daemon's meter (read only when a listener collects).</summary>
internal sealed class NatsMetrics
{
    internal long Published;
    internal long PublishDropped;
    internal long KvPuts;
    internal long KvPutFailures;
    internal long Received;
    internal long ReceiveDropped;
    internal long KvApplied;
    internal long Connects;
    internal long Disconnects;

    public NatsMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(PipelineMetrics.MeterName);
        meter.CreateObservableCounter("pricedaemon.nats.published", () => Volatile.Read(ref Published), "{tick}", "Ticks published to NATS");
        meter.CreateObservableCounter("pricedaemon.nats.publish_dropped", () => Volatile.Read(ref PublishDropped), "{tick}", "Ticks not published: the bounded publish queue was full or NATS was down (the bucket still gets the newest)");
        meter.CreateObservableCounter("pricedaemon.nats.kv_puts", () => Volatile.Read(ref KvPuts), "{put}", "Last values written to the key-value bucket");
        meter.CreateObservableCounter("pricedaemon.nats.kv_put_failures", () => Volatile.Read(ref KvPutFailures), "{put}", "Key-value writes that failed and are retried on the next flush");
        meter.CreateObservableCounter("pricedaemon.nats.received", () => Volatile.Read(ref Received), "{tick}", "Ticks received from NATS by an edge");
        meter.CreateObservableCounter("pricedaemon.nats.receive_dropped", () => Volatile.Read(ref ReceiveDropped), "{tick}", "Ticks NATS.Net dropped because an edge's subscription fell behind");
        meter.CreateObservableCounter("pricedaemon.nats.kv_applied", () => Volatile.Read(ref KvApplied), "{tick}", "Last values taken from the bucket because they were newer than what the edge had");
        meter.CreateObservableCounter("pricedaemon.nats.connects", () => Volatile.Read(ref Connects), "{connect}", "NATS connections opened");
        meter.CreateObservableCounter("pricedaemon.nats.disconnects", () => Volatile.Read(ref Disconnects), "{disconnect}", "NATS connections lost");
        HopLatency = meter.CreateHistogram<double>("pricedaemon.nats.hop_latency", "s", "Publisher tap to edge receipt, by the two wall clocks (same host, or NTP/PTP-synced hosts)");
    }

    internal Histogram<double> HopLatency { get; }
}
