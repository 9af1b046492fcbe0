using System.ComponentModel.DataAnnotations;

namespace PriceDaemon.Nats;

/// <summary>
/// Scale-out over NATS. A daemon with a live feed and <see cref="Publish"/> sends every tick to NATS; an edge
/// (<c>Feed:Source=Nats</c>) subscribes to <see cref="Subjects"/> and serves the prices to its own clients.
/// </summary>
public sealed class NatsOptions
{
    public const string Section = "Nats";

    /// <summary>The NATS server (or a comma-separated list of cluster URLs).</summary>
    [Required]
    public string Url { get; set; } = "nats://127.0.0.1:4222";

    /// <summary>Publish every tick of this daemon's feed to <c>prices.&lt;segment&gt;.&lt;id&gt;</c> and last values to <see cref="Bucket"/>.</summary>
    public bool Publish { get; set; }

    /// <summary>
    /// Subject filters an edge takes (<c>prices.NSE_EQ.&gt;</c>, <c>prices.*.INE002A01018</c>); empty means <c>prices.&gt;</c>,
    /// every instrument. Empty rather than a default list because configuration binding appends to a default list.
    /// </summary>
    public string[] Subjects { get; set; } = [];

    /// <summary>JetStream key-value bucket of last values: written by publishers, read by edges before they report ready.</summary>
    [Required]
    [RegularExpression("^[A-Za-z0-9_-]+$", ErrorMessage = "must be letters, digits, '_' or '-'")]
    public string Bucket { get; set; } = "prices";

    /// <summary>
    /// Ticks waiting to be published. When NATS is slow or down the oldest are dropped (counted): the pipeline never
    /// waits for NATS, and the key-value bucket still gets each instrument's newest price on the next flush.
    /// </summary>
    [Range(16, 16_777_216)]
    public int PublishCapacity { get; set; } = 65_536;

    /// <summary>How often a publisher writes changed last values to the bucket: at most one write per instrument per interval.</summary>
    [Range(10, 3_600_000)]
    public int KvFlushIntervalMs { get; set; } = 1000;

    /// <summary>How long an edge waits at start-up for NATS and the bucket before it reports ready with what storage had.</summary>
    [Range(0, 600_000)]
    public int WarmTimeoutMs { get; set; } = 5000;

    /// <summary>Messages an edge's subscription may hold before NATS.Net drops the newest (counted; the bucket repairs last values).</summary>
    [Range(1024, 16_777_216)]
    public int SubscriptionCapacity { get; set; } = 65_536;

    [Range(10, 600_000)]
    public int ConnectTimeoutMs { get; set; } = 2000;

    /// <summary>Reconnect back-off bounds (NATS.Net adds jitter); it retries for ever.</summary>
    [Range(10, 600_000)]
    public int ReconnectMinMs { get; set; } = 250;

    [Range(10, 600_000)]
    public int ReconnectMaxMs { get; set; } = 5000;

    /// <summary>
    /// With pushes on (<c>Push:PublisherKey</c>), the three key-value buckets every daemon shares them through:
    /// <c>&lt;prefix&gt;-inbox</c> (users' notifications), <c>&lt;prefix&gt;-topics</c>, <c>&lt;prefix&gt;-announcements</c>.
    /// </summary>
    [Required]
    [RegularExpression("^[A-Za-z0-9_-]+$", ErrorMessage = "must be letters, digits, '_' or '-'")]
    public string PushBucketPrefix { get; set; } = "push";

    /// <summary>
    /// How long a publish waits for NATS to store it before the API answers 503: nothing was delivered, and the publisher
    /// retries with the same id (a write that did land meanwhile answers the retry as a duplicate).
    /// </summary>
    [Range(50, 60_000)]
    public int PushTimeoutMs { get; set; } = 2000;

    /// <summary>Client name shown by the server's monitoring; empty uses <c>pricedaemon@&lt;host&gt;</c>.</summary>
    public string Name { get; set; } = "";

    internal IReadOnlyList<string> SubjectFilters => Subjects is { Length: > 0 } ? Subjects : [NatsSubjects.All];
}
