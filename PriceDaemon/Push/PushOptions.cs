using System.ComponentModel.DataAnnotations;

namespace PriceDaemon.Push;

/// <summary>
/// The <c>Push</c> section: what the platform backend may push to users' sockets. Off until
/// <see cref="PublisherKey"/> is set: then the publish API is mapped and the inbox file is opened.
/// </summary>
public sealed class PushOptions
{
    public const string Section = "Push";

    /// <summary>
    /// The backend's publisher credential, sent as <c>Authorization: Bearer &lt;key&gt;</c> to the publish API. A key
    /// of its own, not a user token: a user's JWT never publishes. At least 32 bytes; prefer the environment
    /// (<c>PRICEDAEMON_Push__PublisherKey</c>) to a file. Empty (the default): pushes are off.
    /// </summary>
    public string PublisherKey { get; set; } = "";

    /// <summary>
    /// The LiteDB file of users' unacked notifications. Empty (the default): <c>inbox.db</c> beside
    /// <c>Storage:Path</c>. A file of its own, so a burst of notifications never waits behind a price flush.
    /// </summary>
    public string InboxPath { get; set; } = "";

    /// <summary>
    /// Unacked notifications kept per user (default 100). Past it the oldest is expired (counted, logged): a user
    /// away for long gets the newest. At most 200, so a whole inbox replays within a socket's control queue.
    /// </summary>
    [Range(1, 200)]
    public int InboxMaxPerUser { get; set; } = 100;

    /// <summary>How long an unacked notification is kept, in minutes (default 4320, three days).</summary>
    [Range(1, 525_600)]
    public int InboxMaxAgeMinutes { get; set; } = 4320;

    /// <summary>
    /// How often inbox changes are written, in one transaction (default 500 ms). The most a kill -9 can lose: a
    /// notification published (and delivered to connected sockets) less than this before the kill is not replayed
    /// after the restart. A clean stop writes everything.
    /// </summary>
    [Range(10, 60_000)]
    public int FlushIntervalMs { get; set; } = 500;

    /// <summary>Largest publish body accepted, in bytes (default 16384); a larger one is refused with 413.</summary>
    [Range(256, 1_048_576)]
    public int MaxBodyBytes { get; set; } = 16 * 1024;

    /// <summary>
    /// The topics the backend may set (<c>PUT /api/topics/{name}</c>) and clients may subscribe to: given as
    /// <c>Push:Topics:0:Name=leaderboard</c>, <c>Push:Topics:0:AllowAnonymous=true</c>. None by default.
    /// </summary>
    public List<TopicOptions> Topics { get; set; } = [];
}

/// <summary>One topic: a last-value stream the backend sets and clients subscribe to.</summary>
public sealed class TopicOptions
{
    /// <summary>The topic's name, as clients and the backend write it (1-64 characters).</summary>
    public string Name { get; set; } = "";

    /// <summary>Whether sockets without a user (Auth:Mode=None) may subscribe; off by default.</summary>
    public bool AllowAnonymous { get; set; }
}
