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

    // Pushes shared through the push buckets, by PushKind.
    internal readonly long[] PushPublished = new long[PushKinds.Count];
    internal readonly long[] PushReceived = new long[PushKinds.Count];
    internal readonly long[] PushDeduped = new long[PushKinds.Count];
    internal long PushUnavailable;
    internal long PushWriteFailures;

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
        meter.CreateObservableCounter("pricedaemon.nats.push_published", () => ByKind(PushPublished), "{change}", "Push changes this daemon wrote to the push buckets, by kind (notification, ack, expire, topic, announcement, announcement_removed, alert, alert_deleted, alert_state)");
        meter.CreateObservableCounter("pricedaemon.nats.push_received", () => ByKind(PushReceived), "{change}", "Push changes from the buckets that were new to this daemon (another daemon's publish, or one not yet applied here), by kind");
        meter.CreateObservableCounter("pricedaemon.nats.push_deduped", () => ByKind(PushDeduped), "{change}", "Push changes not delivered again: a bucket change this daemon had already applied (its own publish coming back), or a publish whose id another daemon had stored, by kind");
        meter.CreateObservableCounter("pricedaemon.nats.push_unavailable", () => Volatile.Read(ref PushUnavailable), "{publish}", "Publishes answered 503 because NATS did not store them in Nats:PushTimeoutMs (nothing was delivered)");
        meter.CreateObservableCounter("pricedaemon.nats.push_write_failures", () => Volatile.Read(ref PushWriteFailures), "{write}", "Ack and expiry writes to the inbox bucket that failed and are retried");
        HopLatency = meter.CreateHistogram<double>("pricedaemon.nats.hop_latency", "s", "Publisher tap to edge receipt, by the two wall clocks (same host, or NTP/PTP-synced hosts)");
    }

    internal Histogram<double> HopLatency { get; }

    private static Measurement<long>[] ByKind(long[] counts) =>
        [.. PushKinds.Names.Select((name, i) => new Measurement<long>(Volatile.Read(ref counts[i]), new KeyValuePair<string, object?>("kind", name)))];
}

/// <summary>The kinds of push change a daemon shares over NATS, as indexes of <see cref="NatsMetrics"/>' push counters.</summary>
internal static class PushKinds
{
    public const int Notification = 0;
    public const int Ack = 1;
    public const int Expire = 2;
    public const int Topic = 3;
    public const int Announcement = 4;
    public const int AnnouncementRemoved = 5;
    public const int Alert = 6; // a user's alert created
    public const int AlertDeleted = 7;
    public const int AlertState = 8; // a fire or re-arm written by the evaluator
    public static readonly string[] Names = ["notification", "ack", "expire", "topic", "announcement", "announcement_removed", "alert", "alert_deleted", "alert_state"];
    public static int Count => Names.Length;
}
