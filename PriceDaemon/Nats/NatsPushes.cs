using System.Threading.Channels;
using Microsoft.Extensions.Options;
using NATS.Client.Core;
using NATS.Client.KeyValueStore;
using PriceDaemon.Push;
using PriceDaemon.Sockets;

namespace PriceDaemon.Nats;

/// <summary>
/// Pushes in a NATS deployment: every daemon's notifications, topics and announcements live in three JetStream
/// key-value buckets, and every daemon watches all three. A publish is written to its bucket first; only once NATS
/// has stored it does this daemon deliver it to its own sockets, and every other daemon delivers it when its watch
/// brings it. Each daemon applies a change once (by notification id, topic revision, announcement id), whichever
/// path brings it first, so each socket gets it once. A notification's id is created in the bucket atomically
/// (create fails when the key exists): a repeated id is refused on whichever daemon it reaches.
/// </summary>
/// <remarks>
/// The inbox bucket is the inbox's store (no inbox file): a user who reconnects to any daemon gets their unacked
/// notifications from its copy, and an ack is written back (queued, retried while NATS is away) so every daemon
/// stops replaying it. Its max age is <c>Push:InboxMaxAgeMinutes</c>; the per-user count is kept by each daemon
/// applying the same rule, and the publishing daemon deletes what the count expired so a later daemon never loads it.
/// With users' alerts on (<c>Auth:Mode=Jwt</c>) a fourth bucket holds them (<c>NatsPushes.Alerts.cs</c>); the inbox is
/// then shared even without a publisher key, so that fired alerts reach every daemon. Topics and announcements are
/// watched only where the publish API is on.
/// </remarks>
internal sealed partial class NatsPushes : IPushReplica, Alerts.IAlertReplica, IHostedService
{
    private static readonly TimeSpan RetryMin = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan RetryMax = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan FinalWriteTimeout = TimeSpan.FromSeconds(2);

    private readonly NatsLink _link;
    private readonly NatsOptions _options;
    private readonly PushOptions _push;
    private readonly NatsMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly IServiceProvider _services;
    private readonly ILogger<NatsPushes> _logger;
    private readonly Dictionary<string, Task<INatsKVStore>> _buckets = new(StringComparer.Ordinal);
    // Acks and expiries to write to the inbox bucket, in order; a failed write is retried before the next.
    private readonly Channel<(string Key, byte[]? Value, int Kind)> _writes = Channel.CreateUnbounded<(string, byte[]?, int)>(new() { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _loops = [];
    // Resolved at start: the inbox takes this class in its constructor.
    private NotificationInbox _inbox = null!;
    private AnnouncementBoard _board = null!;
    private TopicCache _topics = null!;
    private SessionRegistry _sessions = null!;
    private Alerts.AlertBook? _alerts; // users' alerts shared here (Auth:Mode=Jwt, alerts on)
    private Instruments.InstrumentRegistry _instruments = null!;

    public NatsPushes(
        NatsLink link, IOptions<NatsOptions> options, IOptions<PushOptions> push, NatsMetrics metrics, TimeProvider time, IServiceProvider services, ILogger<NatsPushes> logger)
    {
        _link = link;
        _options = options.Value;
        _push = push.Value;
        _metrics = metrics;
        _time = time;
        _services = services;
        _logger = logger;
    }

    private string InboxBucket => _options.PushBucketPrefix + "-inbox";

    private string TopicsBucket => _options.PushBucketPrefix + "-topics";

    private string AnnouncementsBucket => _options.PushBucketPrefix + "-announcements";

    private string AlertsBucket => _options.PushBucketPrefix + "-alerts";

    /// <summary>
    /// Loads the three buckets before the daemon listens (as the price warm start does), so a socket that connects to
    /// a daemon just started gets the unacked notifications and the announcements in force. NATS that does not answer
    /// within <see cref="NatsOptions.WarmTimeoutMs"/> does not hold the start: the watches fill in when it answers.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _inbox = _services.GetRequiredService<NotificationInbox>();
        _sessions = _services.GetRequiredService<SessionRegistry>();
        _instruments = _services.GetRequiredService<Instruments.InstrumentRegistry>();
        _alerts = _services.GetService<Alerts.IAlertReplica>() is null ? null : _services.GetRequiredService<Alerts.AlertBook>();
        var loaded = new List<TaskCompletionSource>();
        var ct = _stopping.Token;
        void Watch(string bucket, bool ignoreDeletes, Action<NatsKVEntry<ReadOnlyMemory<byte>>> apply)
        {
            var done = new TaskCompletionSource();
            loaded.Add(done);
            _loops.Add(WatchAsync(bucket, ignoreDeletes, apply, done, ct));
        }

        Watch(InboxBucket, ignoreDeletes: true, ApplyNotification);
        // Topics and announcements come only through the publish API: without a publisher key there are none.
        if (_services.GetService<AnnouncementBoard>() is { } board && _services.GetService<TopicCache>() is { } topics)
        {
            (_board, _topics) = (board, topics);
            Watch(TopicsBucket, ignoreDeletes: true, ApplyTopic);
            Watch(AnnouncementsBucket, ignoreDeletes: false, ApplyAnnouncement);
        }

        if (_alerts is not null)
        {
            Watch(AlertsBucket, ignoreDeletes: false, ApplyAlert);
            // Users' alert requests wait for this (AlertBook.Ready), however long past the warm timeout it takes.
            var book = _alerts;
            _ = loaded[^1].Task.ContinueWith(_ => book.Loaded(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            if (_options.Publish)
            {
                _loops.Insert(0, PurgeAlertDeletesAsync(ct));
            }
        }

        _loops.Add(WriteLoopAsync(ct));
        try
        {
            await Task.WhenAll(loaded.Select(static l => l.Task)).WaitAsync(TimeSpan.FromMilliseconds(_options.WarmTimeoutMs), _time, cancellationToken).ConfigureAwait(false);
            LogLoaded(_options.PushBucketPrefix, _inbox.Users);
        }
        catch (TimeoutException)
        {
            LogLoadIncomplete(_options.PushBucketPrefix, _options.WarmTimeoutMs);
        }
    }

    /// <summary>Stops the watches, and gives queued acks a last bounded chance to reach the bucket.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _writes.Writer.TryComplete();
        if (_loops.Count == 0)
        {
            return; // never started
        }

        try
        {
            await _loops[^1].WaitAsync(FinalWriteTimeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            LogUnwritten(_writes.Reader.Count);
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_loops).ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).ConfigureAwait(false);
        _stopping.Dispose();
    }

    public async Task<ReplicaWrite> CreateNotificationAsync(InboxEntry entry, CancellationToken cancellationToken)
    {
        var key = PushCodec.NotificationKey(entry.User, entry.Id);
        return await WriteAsync(PushKinds.Notification, async (bucket, ct) =>
        {
            var created = await bucket.TryCreateAsync(key, PushCodec.Notification(entry), cancellationToken: ct).ConfigureAwait(false);
            if (created.Success)
            {
                return ReplicaWrite.Written;
            }

            // The key exists: another daemon (or this one, earlier) stored this id for this user.
            return created.Error is NatsKVCreateException ? ReplicaWrite.Duplicate : throw created.Error;
        }, InboxBucket, cancellationToken).ConfigureAwait(false);
    }

    public void Acked(InboxEntry entry) =>
        _writes.Writer.TryWrite((PushCodec.NotificationKey(entry.User, entry.Id), PushCodec.Notification(entry), PushKinds.Ack));

    public void Expired(InboxEntry entry) =>
        _writes.Writer.TryWrite((PushCodec.NotificationKey(entry.User, entry.Id), null, PushKinds.Expire));

    public async Task<ReplicaWrite> AddAnnouncementAsync(Announcement announcement, CancellationToken cancellationToken)
    {
        var key = PushCodec.Key(announcement.Id);
        var value = PushCodec.Announcement(announcement);
        return await WriteAsync(PushKinds.Announcement, async (bucket, ct) =>
        {
            var created = await bucket.TryCreateAsync(key, value, cancellationToken: ct).ConfigureAwait(false);
            if (created.Success)
            {
                return ReplicaWrite.Written;
            }

            if (created.Error is not NatsKVCreateException)
            {
                throw created.Error;
            }

            // Held under this id: a duplicate while in force; an expired one is replaced, if no one replaced it first.
            var held = await bucket.TryGetEntryAsync<ReadOnlyMemory<byte>>(key, cancellationToken: ct).ConfigureAwait(false);
            if (held.Success && PushCodec.ReadAnnouncement(held.Value.Value) is { } existing && existing.ExpiresAt > _time.GetUtcNow())
            {
                return ReplicaWrite.Duplicate;
            }

            var revision = held.Success ? held.Value.Revision : 0;
            var updated = await bucket.TryUpdateAsync(key, value, revision, cancellationToken: ct).ConfigureAwait(false);
            return updated.Success ? ReplicaWrite.Written : ReplicaWrite.Duplicate;
        }, AnnouncementsBucket, cancellationToken).ConfigureAwait(false);
    }

    public Task<ReplicaWrite> RemoveAnnouncementAsync(string id, CancellationToken cancellationToken) =>
        WriteAsync(PushKinds.AnnouncementRemoved, async (bucket, ct) =>
        {
            await bucket.DeleteAsync(PushCodec.Key(id), cancellationToken: ct).ConfigureAwait(false);
            return ReplicaWrite.Written;
        }, AnnouncementsBucket, cancellationToken);

    public async Task<(ReplicaWrite Result, long Seq)> SetTopicAsync(string topic, string data, CancellationToken cancellationToken)
    {
        long seq = 0;
        var result = await WriteAsync(PushKinds.Topic, async (bucket, ct) =>
        {
            seq = (long)await bucket.PutAsync(PushCodec.Key(topic), System.Text.Encoding.UTF8.GetBytes(data), cancellationToken: ct).ConfigureAwait(false);
            return ReplicaWrite.Written;
        }, TopicsBucket, cancellationToken).ConfigureAwait(false);
        return (result, seq);
    }

    /// <summary>
    /// One write for the publish API, bounded by <see cref="NatsOptions.PushTimeoutMs"/>: NATS down or slow is
    /// <see cref="ReplicaWrite.Unavailable"/> (the API's 503), never a wait the publisher cannot see the end of.
    /// </summary>
    private async Task<ReplicaWrite> WriteAsync(int kind, Func<INatsKVStore, CancellationToken, Task<ReplicaWrite>> write, string bucketName, CancellationToken cancellationToken)
    {
        if (!_link.IsOpen)
        {
            Interlocked.Increment(ref _metrics.PushUnavailable);
            return ReplicaWrite.Unavailable;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromMilliseconds(_options.PushTimeoutMs));
        try
        {
            var bucket = await BucketAsync(bucketName, timeout.Token).ConfigureAwait(false);
            var result = await write(bucket, timeout.Token).ConfigureAwait(false);
            Interlocked.Increment(ref (result == ReplicaWrite.Written ? _metrics.PushPublished : _metrics.PushDeduped)[kind]);
            return result;
        }
        catch (Exception ex) when (ex is NatsException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            Interlocked.Increment(ref _metrics.PushUnavailable);
            LogUnavailable(PushKinds.Names[kind], ex.Message);
            return ReplicaWrite.Unavailable;
        }
    }

    /// <summary>A push bucket, created on first use by whichever daemon comes first; the inbox's ages out as the inbox does.</summary>
    private Task<INatsKVStore> BucketAsync(string name, CancellationToken ct)
    {
        lock (_buckets)
        {
            if (!_buckets.TryGetValue(name, out var bucket) || bucket.IsFaulted || bucket.IsCanceled)
            {
                _buckets[name] = bucket = OpenBucketAsync(name);
            }

            return bucket.WaitAsync(ct);
        }
    }

    private async Task<INatsKVStore> OpenBucketAsync(string name)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(Math.Max(_options.PushTimeoutMs, _options.WarmTimeoutMs)));
        return await _link.GetOrCreateBucketAsync(new NatsKVConfig(name)
        {
            History = 1,
            Storage = NatsKVStorageType.File,
            MaxAge = name == InboxBucket ? TimeSpan.FromMinutes(_push.InboxMaxAgeMinutes) : TimeSpan.Zero,
            Description = name == AlertsBucket ? "PriceDaemon users' price alerts (README: Price alerts, Scale-out)" : "PriceDaemon pushes (README: Pushes across edges)",
        }, timeout.Token).ConfigureAwait(false);
    }

    private async Task WatchAsync(string name, bool ignoreDeletes, Action<NatsKVEntry<ReadOnlyMemory<byte>>> apply, TaskCompletionSource loaded, CancellationToken ct)
    {
        var delay = RetryMin;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await _link.ConnectAsync().WaitAsync(ct).ConfigureAwait(false);
                var bucket = await BucketAsync(name, ct).ConfigureAwait(false);
                var opts = new NatsKVWatchOpts
                {
                    IgnoreDeletes = ignoreDeletes,
                    // An empty bucket has nothing to deliver: it is loaded as it is, and the watch goes on.
                    OnNoData = _ =>
                    {
                        loaded.TrySetResult();
                        return ValueTask.FromResult(false);
                    },
                };
                // Every (re)start of the watch delivers the bucket's current content again; applying is idempotent.
                await foreach (var entry in bucket.WatchAsync<ReadOnlyMemory<byte>>(opts: opts, cancellationToken: ct).ConfigureAwait(false))
                {
                    delay = RetryMin;
                    apply(entry);
                    if (entry.Delta == 0)
                    {
                        loaded.TrySetResult();
                    }
                }
            }
            catch (Exception ex) when (!ct.IsCancellationRequested)
            {
                // NATS away, or a change that could not be applied: the watch starts again and re-reads the bucket.
                LogWatchFailed(name, ex.Message, delay.TotalSeconds);
                await Task.Delay(delay, _time, ct).ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(RetryMax.TotalMilliseconds, delay.TotalMilliseconds * 2));
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private void ApplyNotification(NatsKVEntry<ReadOnlyMemory<byte>> change)
    {
        if (change.Operation != NatsKVOperation.Put || PushCodec.ReadNotification(change.Value) is not { } entry)
        {
            return;
        }

        var applied = _inbox.Apply(entry, origin: false);
        var kind = entry.Acked ? PushKinds.Ack : PushKinds.Notification;
        Interlocked.Increment(ref (applied == InboxChange.Known ? _metrics.PushDeduped : _metrics.PushReceived)[kind]);
        if (applied == InboxChange.New)
        {
            PushDelivery.ToUser(_sessions, _inbox, entry);
        }
    }

    private void ApplyTopic(NatsKVEntry<ReadOnlyMemory<byte>> change)
    {
        if (change.Operation != NatsKVOperation.Put
            || !_topics.TryGet(PushCodec.Name(change.Key), out var id, out _)
            || PushCodec.ReadTopic(change.Value) is not { } data)
        {
            return; // a topic another daemon configures and this one does not: nobody here can subscribe to it
        }

        Interlocked.Increment(ref (_topics.SetAt(id, data, (long)change.Revision) ? _metrics.PushReceived : _metrics.PushDeduped)[PushKinds.Topic]);
    }

    private void ApplyAnnouncement(NatsKVEntry<ReadOnlyMemory<byte>> change)
    {
        var id = PushCodec.Name(change.Key);
        if (change.Operation != NatsKVOperation.Put)
        {
            var frame = PushFrames.AnnouncementRemoved(id);
            var removed = _board.Remove(id, () => PushDelivery.ToAll(_sessions, frame));
            Interlocked.Increment(ref (removed ? _metrics.PushReceived : _metrics.PushDeduped)[PushKinds.AnnouncementRemoved]);
            return;
        }

        if (PushCodec.ReadAnnouncement(change.Value) is not { } value)
        {
            return;
        }

        var added = _board.Apply(id, value.Level, value.Message, value.ExpiresAt, a => PushDelivery.ToAll(_sessions, a.Frame));
        Interlocked.Increment(ref (added ? _metrics.PushReceived : _metrics.PushDeduped)[PushKinds.Announcement]);
    }

    /// <summary>Writes acks and expiries in order; a write that fails is retried, with back-off, before the next one.</summary>
    private async Task WriteLoopAsync(CancellationToken ct)
    {
        try
        {
            while (await _writes.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                var delay = RetryMin;
                while (_writes.Reader.TryPeek(out var write))
                {
                    try
                    {
                        var bucket = await BucketAsync(InboxBucket, ct).ConfigureAwait(false);
                        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                        timeout.CancelAfter(TimeSpan.FromMilliseconds(_options.PushTimeoutMs));
                        if (write.Value is { } value)
                        {
                            await bucket.PutAsync(write.Key, value, cancellationToken: timeout.Token).ConfigureAwait(false);
                        }
                        else
                        {
                            await bucket.DeleteAsync(write.Key, cancellationToken: timeout.Token).ConfigureAwait(false);
                        }

                        Interlocked.Increment(ref _metrics.PushPublished[write.Kind]);
                        _writes.Reader.TryRead(out _);
                        delay = RetryMin;
                    }
                    catch (Exception ex) when (ex is NatsException or OperationCanceledException && !ct.IsCancellationRequested)
                    {
                        Interlocked.Increment(ref _metrics.PushWriteFailures);
                        LogWriteFailed(InboxBucket, ex.Message, delay.TotalSeconds);
                        await Task.Delay(delay, _time, ct).ConfigureAwait(false);
                        delay = TimeSpan.FromMilliseconds(Math.Min(RetryMax.TotalMilliseconds, delay.TotalMilliseconds * 2));
                    }
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopped; what is still queued was logged by StopAsync and replays (at-least-once).
        }
    }

    [LoggerMessage(EventId = 940, Level = LogLevel.Information, Message = "Pushes shared through NATS buckets {Prefix}-*: loaded ({Users} users with an inbox)")]
    private partial void LogLoaded(string prefix, int users);

    [LoggerMessage(EventId = 941, Level = LogLevel.Warning, Message = "Push buckets {Prefix}-* not loaded within {TimeoutMs} ms; starting anyway, the watches fill in when NATS answers")]
    private partial void LogLoadIncomplete(string prefix, int timeoutMs);

    [LoggerMessage(EventId = 943, Level = LogLevel.Warning, Message = "NATS watch of {Bucket} failed ({Error}); retrying in {Seconds:0.0} s")]
    private partial void LogWatchFailed(string bucket, string error, double seconds);

    [LoggerMessage(EventId = 944, Level = LogLevel.Warning, Message = "Publish of a {Kind} refused (503): NATS did not store it ({Error})")]
    private partial void LogUnavailable(string kind, string error);

    [LoggerMessage(EventId = 945, Level = LogLevel.Warning, Message = "Write to {Bucket} failed ({Error}); retrying in {Seconds:0.0} s")]
    private partial void LogWriteFailed(string bucket, string error, double seconds);

    [LoggerMessage(EventId = 946, Level = LogLevel.Warning, Message = "{Count} acks not written to NATS at stop: those notifications replay once more")]
    private partial void LogUnwritten(int count);
}
