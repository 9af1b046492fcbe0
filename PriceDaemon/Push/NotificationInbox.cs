using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using LiteDB;
using Microsoft.Extensions.Options;
using PriceDaemon.Pipeline;
using PriceDaemon.Storage;

namespace PriceDaemon.Push;

/// <summary>
/// Every user's unacked notifications: held in memory, where publishing, replay and acks read and change them, and
/// written behind to a LiteDB file of their own every <see cref="PushOptions.FlushIntervalMs"/>. Loaded at start, so
/// a restart replays what was unacked. One thread, the loop's, owns the file from its start to its final write, as
/// storage's loop owns the prices file (<see cref="StorageService"/>).
/// </summary>
/// <remarks>
/// Each user's inbox has its own lock; changes are queued for the writer under it, so the file sees a user's
/// changes in the order they were made. Acked entries stay (in memory and in the file) until they age out: a
/// repeated publisher id is not delivered again, before or after its ack, within <see cref="PushOptions.InboxMaxAgeMinutes"/>.
/// </remarks>
internal sealed partial class NotificationInbox : BackgroundService
{
    private const string Collection = "notifications";

    private readonly PushOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<NotificationInbox> _logger;
    private readonly ConcurrentDictionary<string, UserInbox> _users = new(StringComparer.Ordinal);
    // The last write at a stop: milliseconds on a healthy disk; a stalled one does not hold the exit past this.
    private static readonly TimeSpan FinalWriteTimeout = TimeSpan.FromSeconds(3);

    private readonly ConcurrentQueue<(string Key, InboxEntry? Entry)> _changes = new(); // Entry null: delete
    private List<(string Key, InboxEntry? Entry)>? _unwritten; // the writer's: a batch whose write failed
    private readonly TimeSpan _maxAge;
    private readonly IPushReplica? _replica; // a NATS deployment: the shared bucket is the store, not the file
    private LiteDatabase? _db;
    private bool _opened;
    private long _lastSweep;

    // Counters for /metrics.
    internal long Published;
    internal long Duplicates;
    internal long Delivered;
    internal long Replayed;
    internal long Acked;
    internal long Expired;
    internal long Pending;
    internal long Written;

    public NotificationInbox(
        IOptions<PushOptions> options, IOptions<StorageOptions> storage, TimeProvider time, ILogger<NotificationInbox> logger, IMeterFactory meterFactory, IPushReplica? replica = null)
    {
        _options = options.Value;
        _replica = replica;
        _time = time;
        _logger = logger;
        _maxAge = TimeSpan.FromMinutes(_options.InboxMaxAgeMinutes);
        var meter = meterFactory.Create(PipelineMetrics.MeterName);
        meter.CreateObservableCounter("pricedaemon.notifications.published", () => Volatile.Read(ref Published), "{notification}", "Notifications accepted by the publish API (repeats of an id not counted)");
        meter.CreateObservableCounter("pricedaemon.notifications.duplicates", () => Volatile.Read(ref Duplicates), "{notification}", "Publishes of an id the user's inbox already held: not delivered again");
        meter.CreateObservableCounter("pricedaemon.notifications.delivered", ObserveDelivered, "{frame}", "Notification frames queued on sockets, by path: live (at publish) or replay (at connect)");
        meter.CreateObservableCounter("pricedaemon.notifications.acked", () => Volatile.Read(ref Acked), "{notification}", "Notifications acked by a client");
        meter.CreateObservableCounter("pricedaemon.notifications.expired", () => Volatile.Read(ref Expired), "{notification}", "Unacked notifications dropped from an inbox: past Push:InboxMaxAgeMinutes or Push:InboxMaxPerUser");
        meter.CreateObservableCounter("pricedaemon.inbox.writes", () => Volatile.Read(ref Written), "{change}", "Inbox changes written to the inbox file");
        meter.CreateObservableUpDownCounter("pricedaemon.inbox.pending", () => Volatile.Read(ref Pending), "{notification}", "Unacked notifications over all inboxes");
        meter.CreateObservableUpDownCounter("pricedaemon.inbox.users", () => _users.Count, "{user}", "Users with an inbox (unacked notifications, or acked ids kept for dedupe)");
        Path = System.IO.Path.GetFullPath(string.IsNullOrEmpty(_options.InboxPath)
            ? System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(storage.Value.Path)) ?? ".", "inbox.db")
            : _options.InboxPath);
    }

    /// <summary>The inbox file in use.</summary>
    public string Path { get; }

    /// <summary>Users with at least one entry (unacked or kept for dedupe): for /metrics.</summary>
    public int Users => _users.Count;

    /// <summary>
    /// Opens the file and loads every entry younger than the maximum age; idempotent. A shared inbox (NATS) opens no
    /// file: the bucket is its store, and <see cref="Apply"/> loads it.
    /// </summary>
    public void Open()
    {
        if (_db is not null || _opened)
        {
            return;
        }

        if (_replica is not null)
        {
            _opened = true;
            LogShared();
            return;
        }

        try
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
            var db = new LiteDatabase(new ConnectionString { Filename = Path, Connection = ConnectionType.Direct });
            var oldest = _time.GetUtcNow() - _maxAge;
            var loaded = 0;
            foreach (var doc in db.GetCollection(Collection).FindAll().OrderBy(static d => d["c"].AsInt64))
            {
                var entry = new InboxEntry(doc["u"].AsString, doc["i"].AsString, doc["k"].AsString,
                    DateTimeOffset.FromUnixTimeMilliseconds(doc["c"].AsInt64), doc["d"].AsString);
                if (doc["a"].AsBoolean)
                {
                    entry.MarkAcked();
                }

                if (entry.CreatedAt < oldest)
                {
                    Queue(entry.StoreKey, null);
                    continue;
                }

                var inbox = _users.GetOrAdd(entry.User, static _ => new UserInbox());
                inbox.Entries.Add(entry);
                if (!entry.Acked)
                {
                    inbox.PendingCount++;
                    Pending++;
                }

                loaded++;
            }

            _db = db;
            LogOpened(Path, loaded, Pending);
        }
        catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException or InvalidCastException)
        {
            throw new StorageException($"Push:InboxPath: cannot use {Path}: {ex.Message}", ex);
        }
    }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        Open();
        return base.StartAsync(cancellationToken);
    }

    /// <summary>
    /// Adds a notification for <paramref name="user"/>; null when that user's inbox already holds <paramref name="id"/>
    /// (a publisher retry: not delivered again). Past the per-user count the oldest unacked entry expires.
    /// </summary>
    public InboxEntry? Add(string user, string id, string kind, string data)
    {
        while (true)
        {
            var inbox = _users.GetOrAdd(user, static _ => new UserInbox());
            lock (inbox)
            {
                // Swept away empty between the lookup and the lock: take the user's new inbox.
                if (!inbox.Removed)
                {
                    return AddLocked(inbox, user, id, kind, data);
                }
            }
        }
    }

    private InboxEntry? AddLocked(UserInbox inbox, string user, string id, string kind, string data)
    {
        if (inbox.Entries.Exists(e => e.Id == id))
        {
            Interlocked.Increment(ref Duplicates);
            return null;
        }

        var entry = new InboxEntry(user, id, kind, _time.GetUtcNow(), data);
        InsertLocked(inbox, entry, origin: true);
        return entry;
    }

    /// <summary>Whether <paramref name="user"/>'s inbox holds <paramref name="id"/> (unacked, or acked and kept for dedupe).</summary>
    public bool Contains(string user, string id)
    {
        if (!_users.TryGetValue(user, out var inbox))
        {
            return false;
        }

        lock (inbox)
        {
            return inbox.Entries.Exists(e => e.Id == id);
        }
    }

    /// <summary>
    /// A shared inbox (NATS): takes a notification as the bucket holds it, written by this daemon's publish API
    /// (<paramref name="origin"/>) or by another daemon's. <see cref="InboxChange.New"/> when it is new here and
    /// unacked: the caller delivers it to this daemon's sockets, so each socket gets it once whichever path brings it
    /// first. One held already is taken for its ack only (a client acked it on another daemon).
    /// </summary>
    public InboxChange Apply(InboxEntry entry, bool origin)
    {
        while (true)
        {
            var inbox = _users.GetOrAdd(entry.User, static _ => new UserInbox());
            lock (inbox)
            {
                if (inbox.Removed)
                {
                    continue;
                }

                var held = inbox.Entries.Find(e => e.Id == entry.Id);
                if (held is not null)
                {
                    if (!entry.Acked || held.Acked)
                    {
                        return InboxChange.Known;
                    }

                    held.MarkAcked();
                    inbox.PendingCount--;
                    Interlocked.Decrement(ref Pending);
                    return InboxChange.Acked;
                }

                if (entry.CreatedAt < _time.GetUtcNow() - _maxAge)
                {
                    return InboxChange.Known;
                }

                InsertLocked(inbox, entry, origin);
                return entry.Acked ? InboxChange.Acked : InboxChange.New;
            }
        }
    }

    /// <summary>
    /// Adds <paramref name="entry"/> in order of creation, keeping the user's counts: past the unacked limit the oldest
    /// unacked expires, past the same number of acked ids the oldest acked goes. Only the daemon that published it
    /// (<paramref name="origin"/>) tells a shared store what it expired; the others apply the same rule themselves.
    /// </summary>
    private void InsertLocked(UserInbox inbox, InboxEntry entry, bool origin)
    {
        // An acked entry arrives only from a shared store (an id kept for dedupe): it takes no unacked place.
        if (!entry.Acked && inbox.PendingCount >= _options.InboxMaxPerUser)
        {
            var oldest = inbox.Entries.FindIndex(static e => !e.Acked);
            RemoveAt(inbox, oldest, origin);
            // Once per time the inbox fills, not per notification: a user away for a day would write a line each.
            if (!inbox.Full)
            {
                inbox.Full = true;
                LogOverflow(_options.InboxMaxPerUser);
            }
        }
        else if (!entry.Acked)
        {
            inbox.Full = false;
        }

        // Acked entries are kept for dedupe only: as many as the unacked limit, oldest out first.
        if (inbox.Entries.Count - inbox.PendingCount >= _options.InboxMaxPerUser)
        {
            RemoveAt(inbox, inbox.Entries.FindIndex(static e => e.Acked), origin);
        }

        // Oldest first: from a shared store an entry can arrive after a younger one (the bucket orders by last write).
        inbox.Entries.Insert(inbox.Entries.FindLastIndex(e => e.CreatedAt <= entry.CreatedAt) + 1, entry);
        if (!entry.Acked)
        {
            inbox.PendingCount++;
            Interlocked.Increment(ref Pending);
        }

        if (origin)
        {
            Interlocked.Increment(ref Published);
        }

        Queue(entry.StoreKey, entry);
    }

    /// <summary>The replay frames of <paramref name="user"/>'s unacked notifications, oldest first.</summary>
    public List<byte[]> PendingFrames(string user)
    {
        if (!_users.TryGetValue(user, out var inbox))
        {
            return [];
        }

        lock (inbox)
        {
            // Aged out but not yet swept: not replayed either, so expiry does not wait for the sweep.
            var oldest = _time.GetUtcNow() - _maxAge;
            var frames = inbox.Entries.Where(e => !e.Acked && e.CreatedAt >= oldest).Select(static e => e.Replayed).ToList();
            Interlocked.Add(ref Replayed, frames.Count);
            return frames;
        }
    }

    /// <summary>Acks <paramref name="ids"/> of <paramref name="user"/>; returns those that were unacked.</summary>
    public List<string> Ack(string user, IEnumerable<string> ids)
    {
        var acked = new List<string>();
        if (!_users.TryGetValue(user, out var inbox))
        {
            return acked;
        }

        lock (inbox)
        {
            foreach (var id in ids)
            {
                var entry = inbox.Entries.Find(e => e.Id == id);
                if (entry is null || entry.Acked)
                {
                    continue;
                }

                entry.MarkAcked();
                inbox.PendingCount--;
                Interlocked.Decrement(ref Pending);
                Interlocked.Increment(ref Acked);
                Queue(entry.StoreKey, entry);
                _replica?.Acked(entry);
                acked.Add(id);
            }
        }

        return acked;
    }

    /// <summary>Drops entries older than the maximum age; the writer's loop calls it, tests may too.</summary>
    internal void Sweep()
    {
        var oldest = _time.GetUtcNow() - _maxAge;
        foreach (var (user, inbox) in _users)
        {
            lock (inbox)
            {
                while (inbox.Entries.Count > 0 && inbox.Entries[0].CreatedAt < oldest)
                {
                    RemoveAt(inbox, 0, origin: false); // each daemon sweeps by age; a shared bucket ages entries out itself
                }

                if (inbox.Entries.Count == 0)
                {
                    // Removed under the lock; an Add that already holds this inbox re-adds the user below.
                    _users.TryRemove(new KeyValuePair<string, UserInbox>(user, inbox));
                    inbox.Removed = true;
                }
            }
        }
    }

    /// <summary>Writes every queued change in one transaction; false when the write failed (it is retried).</summary>
    internal bool Flush()
    {
        if ((_unwritten is null && _changes.IsEmpty) || _db is null)
        {
            return true;
        }

        // A failed batch first, then the queue taken whole; the newest change of a key wins within the batch.
        var taken = _unwritten ?? [];
        _unwritten = null;
        while (_changes.TryDequeue(out var change))
        {
            taken.Add(change);
        }

        var batch = new Dictionary<string, InboxEntry?>(StringComparer.Ordinal);
        foreach (var (key, entry) in taken)
        {
            batch[key] = entry;
        }

        try
        {
            var collection = _db.GetCollection(Collection);
            _db.BeginTrans();
            foreach (var (key, entry) in batch)
            {
                if (entry is null)
                {
                    collection.Delete(key);
                }
                else
                {
                    collection.Upsert(new BsonDocument
                    {
                        ["_id"] = key,
                        ["u"] = entry.User,
                        ["i"] = entry.Id,
                        ["k"] = entry.Kind,
                        ["c"] = entry.CreatedAt.ToUnixTimeMilliseconds(),
                        ["d"] = entry.Data,
                        ["a"] = entry.Acked,
                    });
                }
            }

            _db.Commit();
            Interlocked.Add(ref Written, batch.Count);
            return true;
        }
        catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException)
        {
            try
            {
                _db.Rollback();
            }
            catch (Exception rollback) when (rollback is LiteException or IOException or UnauthorizedAccessException)
            {
                // The transaction is gone with the failed write; nothing of it was committed.
            }

            // Kept by the writer alone and written ahead of the queue next time, so a change queued meanwhile is
            // neither lost nor overtaken by an older one.
            _unwritten = taken;
            LogWriteFailed(Path, ex.Message);
            return false;
        }
    }

    /// <summary>
    /// Stops the writer, which writes its last batch, waiting for it on a bound of its own: the inbox stops after
    /// Kestrel (no publish or ack comes after), when the host's stop budget may be spent, and its last write is
    /// what "a clean stop loses nothing" rests on.
    /// </summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        using var bound = new CancellationTokenSource(FinalWriteTimeout, _time);
        await base.StopAsync(bound.Token).ConfigureAwait(false);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        DedicatedThread.Run("pricedaemon-inbox", () => RunAsync(stoppingToken), niceness: 10);

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromMilliseconds(_options.FlushIntervalMs);
        _lastSweep = _time.GetTimestamp();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(interval, _time, stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break;
                }

                if (_time.GetElapsedTime(_lastSweep) >= TimeSpan.FromSeconds(10))
                {
                    _lastSweep = _time.GetTimestamp();
                    Sweep();
                }

                Flush();
            }
        }
        finally
        {
            // The final write of a stop: a clean stop loses nothing.
            Flush();
            _db?.Dispose();
            _db = null;
        }
    }

    private Measurement<long>[] ObserveDelivered() =>
    [
        new(Volatile.Read(ref Delivered), new KeyValuePair<string, object?>("path", "live")),
        new(Volatile.Read(ref Replayed), new KeyValuePair<string, object?>("path", "replay")),
    ];

    private void RemoveAt(UserInbox inbox, int index, bool origin)
    {
        var entry = inbox.Entries[index];
        inbox.Entries.RemoveAt(index);
        if (!entry.Acked)
        {
            inbox.PendingCount--;
            Interlocked.Decrement(ref Pending);
            Interlocked.Increment(ref Expired);
        }

        Queue(entry.StoreKey, null);
        if (origin)
        {
            _replica?.Expired(entry);
        }
    }

    /// <summary>Queues a change for the file; a shared inbox has no file (the bucket was written before the change).</summary>
    private void Queue(string key, InboxEntry? entry)
    {
        if (_replica is null)
        {
            _changes.Enqueue((key, entry));
        }
    }

    private sealed class UserInbox
    {
        public readonly List<InboxEntry> Entries = []; // oldest first
        public int PendingCount; // entries not acked
        public bool Removed;
        public bool Full; // the overflow was logged; cleared once a notification fits without expiring one
    }

    [LoggerMessage(EventId = 373, Level = LogLevel.Information, Message = "Inbox shared through NATS: no inbox file; the key-value bucket is its store")]
    private partial void LogShared();

    [LoggerMessage(EventId = 370, Level = LogLevel.Information, Message = "Inbox {Path} opened: {Entries} entries, {Pending} unacked")]
    private partial void LogOpened(string path, int entries, long pending);

    [LoggerMessage(EventId = 371, Level = LogLevel.Warning, Message = "A user's inbox is full ({Limit} unacked): its oldest notifications expire to make room until the user acks (counted in notifications_expired)")]
    private partial void LogOverflow(int limit);

    [LoggerMessage(EventId = 372, Level = LogLevel.Error, Message = "Inbox {Path}: write failed, retried at the next flush: {Error}")]
    private partial void LogWriteFailed(string path, string error);
}

/// <summary>What <see cref="NotificationInbox.Apply"/> changed.</summary>
internal enum InboxChange
{
    /// <summary>Nothing: held already as it is, or aged out.</summary>
    Known,

    /// <summary>A notification new here and unacked: to deliver to this daemon's sockets.</summary>
    New,

    /// <summary>An ack made on another daemon (or an acked id new here, kept for dedupe): not replayed here any more.</summary>
    Acked,
}
