using System.Diagnostics.Metrics;
using System.Threading.Channels;
using LiteDB;
using Microsoft.Extensions.Options;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Push;
using PriceDaemon.Sockets;
using PriceDaemon.Storage;

namespace PriceDaemon.Alerts;

/// <summary>
/// The alerts file's one owner, and the only thread that turns a fire into a notification: it takes the book's queue
/// in batches, commits each batch in one transaction, and only then answers the creators and sends the notifications.
/// So a fired alert is stored as fired before anyone hears of it: a restart (even after SIGKILL) never fires it
/// again; a fire whose notification was still in the inbox's write-behind when the process died is lost with it
/// (at most <see cref="PushOptions.FlushIntervalMs"/>), but its state in <c>alert_list</c> still says it fired.
/// </summary>
/// <remarks>
/// In a NATS deployment (<see cref="IAlertReplica"/>) there is no file: users' alerts live in the shared bucket, and
/// this writer, on the evaluator, writes each fire's state over the revision the book holds (a delete or another
/// evaluator's write made meanwhile wins, and the fire is dropped), then creates the notification in the shared inbox
/// (its id is the alert's and the fire's number: created once, whoever tries). NATS away: retried, in order.
/// </remarks>
internal sealed partial class AlertWriter : BackgroundService
{
    private const string Collection = "alerts";
    private const int MaxBatch = 1024;
    private const int SharedWrites = 64; // NATS writes in flight at once (shared store): different alerts' changes
    private static readonly TimeSpan FinalWriteTimeout = TimeSpan.FromSeconds(3);

    private readonly AlertBook _book;
    private readonly InstrumentRegistry _instruments;
    private readonly NotificationInbox? _inbox;
    private readonly SessionRegistry _sessions;
    private readonly TimeProvider _time;
    private readonly ILogger<AlertWriter> _logger;
    private readonly IAlertReplica? _replica;
    private readonly IPushReplica? _pushes;
    private LiteDatabase? _db;
    private bool _opened;

    internal long Notified;
    internal long Conflicts; // writes the shared bucket refused: the alert was deleted or written meanwhile (or the answer to an earlier attempt was lost)
    internal long FiresStored; // fires this daemon wrote to the shared bucket (tests: two evaluators write a crossing once)

    public AlertWriter(
        AlertBook book,
        InstrumentRegistry instruments,
        SessionRegistry sessions,
        IOptions<AlertOptions> options,
        IOptions<StorageOptions> storage,
        TimeProvider time,
        ILogger<AlertWriter> logger,
        IMeterFactory meterFactory,
        NotificationInbox? inbox = null,
        IAlertReplica? replica = null,
        IPushReplica? pushes = null)
    {
        _book = book;
        _replica = replica;
        _pushes = pushes;
        _instruments = instruments;
        _sessions = sessions;
        _inbox = inbox;
        _time = time;
        _logger = logger;
        var path = options.Value.Path;
        Path = System.IO.Path.GetFullPath(string.IsNullOrEmpty(path)
            ? System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(storage.Value.Path)) ?? ".", "alerts.db")
            : path);
        var meter = meterFactory.Create(PipelineMetrics.MeterName);
        meter.CreateObservableCounter("pricedaemon.alerts.fired", () => Volatile.Read(ref book.Fired), "{alert}", "Price alerts fired on the tick path");
        meter.CreateObservableCounter("pricedaemon.alerts.deferred", () => Volatile.Read(ref book.Deferred), "{alert}", "Fires put off to a later tick because the alert writer's queue was full");
        meter.CreateObservableCounter("pricedaemon.alerts.notified", () => Volatile.Read(ref Notified), "{notification}", "price_alert notifications handed to the inbox or to a connection");
        meter.CreateObservableCounter("pricedaemon.alerts.conflicts", () => Volatile.Read(ref Conflicts), "{alert}", "Alert writes the shared alerts bucket refused because the alert was deleted or written meanwhile, by another evaluator or by an earlier attempt whose answer was lost (NATS)");
        meter.CreateObservableUpDownCounter("pricedaemon.alerts.count", () => Volatile.Read(ref book.Held), "{alert}", "Alerts held, armed or fired");
    }

    /// <summary>The alerts file in use.</summary>
    public string Path { get; }

    /// <summary>Opens the file and puts every stored alert back in the book; idempotent. Before the first tick.</summary>
    public void Open()
    {
        if (_db is not null || _opened)
        {
            return;
        }

        if (_replica is not null)
        {
            // The bucket is the store: the watch fills the book (Nats/NatsPushes.Alerts.cs).
            _opened = true;
            _book.ArmSynthetic();
            LogShared(_replica.Evaluates);
            return;
        }

        try
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
            var db = new LiteDatabase(new ConnectionString { Filename = Path, Connection = ConnectionType.Direct });
            var loaded = 0;
            foreach (var doc in db.GetCollection(Collection).FindAll().OrderBy(static d => d["ca"].AsInt64))
            {
                if (Read(doc) is { } alert)
                {
                    _book.Load(alert);
                    loaded++;
                }
            }

            _db = db;
            _book.ArmSynthetic();
            LogOpened(Path, loaded);
        }
        catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException or InvalidCastException)
        {
            throw new StorageException($"Alerts:Path: cannot use {Path}: {ex.Message}", ex);
        }
    }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        Open();
        return base.StartAsync(cancellationToken);
    }

    /// <summary>
    /// The queue is closed (the throttle has drained by now), and the loop writes and delivers what it holds, on a
    /// bound of its own. Stops before the inbox does (registered after it), so the last notifications reach its final write.
    /// </summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _book.Complete();
        if (ExecuteTask is { } running)
        {
            try
            {
                await running.WaitAsync(FinalWriteTimeout, _time).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                LogStopTimeout(_replica is null ? Path : "NATS bucket");
            }
        }

        using var bound = new CancellationTokenSource(FinalWriteTimeout, _time);
        await base.StopAsync(bound.Token).ConfigureAwait(false);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        DedicatedThread.Run("pricedaemon-alerts", RunAsync, niceness: 5);

    private async Task RunAsync()
    {
        var batch = new List<AlertWork>(MaxBatch);
        var reader = _book.Work;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(true))
            {
                while (batch.Count < MaxBatch && reader.TryRead(out var work))
                {
                    batch.Add(work);
                }

                if (_replica is not null)
                {
                    // A connection's alerts are not shared: delivered first, never behind NATS retries.
                    foreach (var work in batch)
                    {
                        if (work.Snapshot.Alert.OwnedByConnection)
                        {
                            Finish(work);
                        }
                    }

                    // Each alert's changes in order; different alerts' at once, so a market-wide crossing is not
                    // notified one NATS round trip after another.
                    var replica = _replica;
                    await Parallel.ForEachAsync(
                        batch.Where(static w => !w.Snapshot.Alert.OwnedByConnection).GroupBy(static w => w.Snapshot.Alert),
                        new ParallelOptions { MaxDegreeOfParallelism = SharedWrites },
                        async (changes, _) =>
                        {
                            foreach (var work in changes)
                            {
                                await ShareAsync(work, replica, reader).ConfigureAwait(false);
                            }
                        }).ConfigureAwait(true);
                    batch.Clear();
                    continue;
                }

                // Stored first, then told: a failed write is retried, and nothing of the batch goes out before it lands.
                while (!Write(batch))
                {
                    if (reader.Completion.IsCompleted)
                    {
                        break;
                    }

                    await Task.Delay(TimeSpan.FromSeconds(1), _time).ConfigureAwait(true);
                }

                foreach (var work in batch)
                {
                    Finish(work);
                }

                batch.Clear();
            }
        }
        finally
        {
            _db?.Dispose();
            _db = null;
        }
    }

    /// <summary>Commits one batch; false when the write failed (the batch is retried whole).</summary>
    internal bool Write(List<AlertWork> batch)
    {
        if (_db is null)
        {
            return true;
        }

        var collection = _db.GetCollection(Collection);
        try
        {
            _db.BeginTrans();
            foreach (var work in batch)
            {
                var alert = work.Snapshot.Alert;
                if (alert.OwnedByConnection)
                {
                    continue; // a connection's alerts live and die with it
                }

                if (work.Kind == AlertWorkKind.Deleted)
                {
                    collection.Delete(alert.Id);
                }
                else
                {
                    collection.Upsert(Document(work.Snapshot));
                }
            }

            _db.Commit();
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
                // Nothing of the transaction was committed.
            }

            LogWriteFailed(Path, ex.Message);
            return false;
        }
    }

    /// <summary>
    /// One change of a shared store: a user's fire or re-arm written over the revision of the state the book holds,
    /// then a fire's notification, then the fire marked notified. NATS away: retried (a stop ends the retries).
    /// </summary>
    /// <remarks>
    /// A write refused because another revision holds the alert is not taken as lost: the stored value is read. Gone:
    /// the delete wins. A fire with at least this fire's count: this writer's own earlier attempt whose answer was lost,
    /// or another evaluator's write of the same crossing; it stands, and the notification is created (once per fire id,
    /// whoever tries). Fewer: written again over the revision read.
    /// </remarks>
    private async Task ShareAsync(AlertWork work, IAlertReplica replica, ChannelReader<AlertWork> reader)
    {
        var alert = work.Snapshot.Alert;
        if (work.Kind == AlertWorkKind.Unnotified)
        {
            await NotifySharedAsync(work.Snapshot, replica, reader).ConfigureAwait(false);
            return;
        }

        if (work.Kind is not (AlertWorkKind.Fired or AlertWorkKind.Changed))
        {
            Finish(work);
            return;
        }

        var ours = work.Snapshot;
        var revision = _book.RevisionOf(alert);
        while (!alert.Deleted)
        {
            var (result, written) = await replica.UpdateAsync(ours, Volatile.Read(ref alert.Notified), revision, CancellationToken.None).ConfigureAwait(false);
            if (result == ReplicaWrite.Written)
            {
                _book.Stored(alert, written);
                if (work.Kind == AlertWorkKind.Fired)
                {
                    Interlocked.Increment(ref FiresStored);
                    await NotifySharedAsync(ours, replica, reader).ConfigureAwait(false);
                }

                return;
            }

            if (result == ReplicaWrite.Duplicate)
            {
                Interlocked.Increment(ref Conflicts);
                var (read, stored) = await replica.ReadAsync(alert, CancellationToken.None).ConfigureAwait(false);
                if (read == ReplicaWrite.Written)
                {
                    if (stored is not { } held)
                    {
                        LogConflict(alert.Id, ours.FireCount);
                        return; // deleted: the delete wins
                    }

                    if (held.FireCount > ours.FireCount || (held.FireCount == ours.FireCount && (work.Kind == AlertWorkKind.Fired || held.State == ours.State)))
                    {
                        // This state, or a later one, is stored: it stands; a fire still gets its notification.
                        if (held.FireCount == ours.FireCount)
                        {
                            _book.Stored(alert, held.Revision);
                        }

                        LogStoredAlready(alert.Id, ours.FireCount, held.FireCount);
                        if (work.Kind == AlertWorkKind.Fired)
                        {
                            await NotifySharedAsync(ours, replica, reader).ConfigureAwait(false);
                        }

                        return;
                    }

                    revision = held.Revision; // an older state: this one goes over it
                    continue;
                }
            }

            if (reader.Completion.IsCompleted)
            {
                LogUnshared(alert.Id);
                return;
            }

            await Task.Delay(TimeSpan.FromSeconds(1), _time).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A stored fire's notification, then the fire marked notified in the bucket (<c>nf</c>): a stop or SIGKILL between
    /// the two leaves the mark behind, and the evaluator's next start creates the notification (once per fire id).
    /// </summary>
    private async Task NotifySharedAsync(AlertSnapshot fired, IAlertReplica replica, ChannelReader<AlertWork> reader)
    {
        var alert = fired.Alert;
        if (!await DeliverSharedAsync(fired, reader).ConfigureAwait(false))
        {
            return;
        }

        Volatile.Write(ref alert.Notified, Math.Max(Volatile.Read(ref alert.Notified), fired.FireCount));
        var revision = _book.RevisionOf(alert);
        // Fired again (or another evaluator's later fire held) since: that state's own write carries the mark.
        while (!alert.Deleted && _book.Current(alert).FireCount == fired.FireCount)
        {
            var (result, written) = await replica.UpdateAsync(fired, fired.FireCount, revision, CancellationToken.None).ConfigureAwait(false);
            if (result == ReplicaWrite.Written)
            {
                _book.Stored(alert, written);
                return;
            }

            if (result == ReplicaWrite.Duplicate)
            {
                var (read, stored) = await replica.ReadAsync(alert, CancellationToken.None).ConfigureAwait(false);
                if (read == ReplicaWrite.Written)
                {
                    if (stored is not { } held || held.FireCount != fired.FireCount || held.Notified >= fired.FireCount)
                    {
                        return; // deleted, fired on, or marked already
                    }

                    revision = held.Revision;
                    continue;
                }
            }

            if (reader.Completion.IsCompleted)
            {
                return; // the next start notifies it again: the inbox's create-once id keeps it to one
            }

            await Task.Delay(TimeSpan.FromSeconds(1), _time).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A user's fire into the shared inbox (created once, whoever tries), then to this daemon's sockets of the user;
    /// false when it was not created before a stop.
    /// </summary>
    private async Task<bool> DeliverSharedAsync(AlertSnapshot fired, ChannelReader<AlertWork> reader)
    {
        if (_pushes is null || _inbox is null)
        {
            return false;
        }

        var alert = fired.Alert;
        var entry = new InboxEntry(alert.Owner, AlertFrames.NotificationId(fired), AlertFrames.NotificationKind, _time.GetUtcNow(),
            AlertFrames.NotificationData(fired, _instruments[alert.InstrumentId].Symbol));
        while (true)
        {
            switch (await _pushes.CreateNotificationAsync(entry, CancellationToken.None).ConfigureAwait(false))
            {
                case ReplicaWrite.Written:
                    // Not New when this daemon's inbox watch brought it back first and delivered it: the same sockets, once.
                    if (_inbox.Apply(entry, origin: true) == InboxChange.New)
                    {
                        PushDelivery.ToUser(_sessions, _inbox, entry);
                    }

                    Interlocked.Increment(ref Notified);
                    return true;
                case ReplicaWrite.Duplicate:
                    return true; // this fire was notified already (by an evaluator before a restart, or another one)
            }

            if (reader.Completion.IsCompleted)
            {
                LogUnnotified(entry.Id);
                return false;
            }

            await Task.Delay(TimeSpan.FromSeconds(1), _time).ConfigureAwait(false);
        }
    }

    private void Finish(AlertWork work)
    {
        if (work.Kind == AlertWorkKind.Fired)
        {
            Deliver(work.Snapshot);
        }

        work.Done?.TrySetResult();
    }

    /// <summary>
    /// A fire as a <c>price_alert</c> notification: a user's into their inbox (at-least-once, replayed on their next
    /// connect until acked) and to every socket they hold now; a connection's to that socket alone.
    /// </summary>
    private void Deliver(AlertSnapshot fired)
    {
        var alert = fired.Alert;
        var id = AlertFrames.NotificationId(fired);
        var data = AlertFrames.NotificationData(fired, _instruments[alert.InstrumentId].Symbol);
        if (alert.OwnedByConnection)
        {
            alert.Deliver?.Invoke(new InboxEntry(alert.Owner, id, AlertFrames.NotificationKind, _time.GetUtcNow(), data).Live);
            Interlocked.Increment(ref Notified);
            return;
        }

        if (_inbox?.Add(alert.Owner, id, AlertFrames.NotificationKind, data) is not { } entry)
        {
            return; // already in the inbox: this fire was delivered before a restart
        }

        var sockets = 0;
        foreach (var session in _sessions.SessionsOf(alert.Owner))
        {
            session.EnqueueControl(entry.Live);
            sockets++;
        }

        Interlocked.Add(ref _inbox.Delivered, sockets);
        Interlocked.Increment(ref Notified);
    }

    private static BsonDocument Document(AlertSnapshot s) => new()
    {
        ["_id"] = s.Alert.Id,
        ["o"] = s.Alert.Owner,
        ["k"] = s.Alert.InstrumentKey,
        ["c"] = AlertConditions.Name(s.Alert.Condition),
        ["v"] = s.Alert.Value,
        ["r"] = s.Alert.Repeat,
        ["n"] = s.Alert.Note,
        ["ca"] = s.Alert.CreatedAt.ToUnixTimeMilliseconds(),
        ["s"] = (int)s.State,
        ["fa"] = s.FiredAtUs,
        ["fp"] = s.FiredPrice,
        ["fc"] = s.FireCount,
    };

    private Alert? Read(BsonDocument doc)
    {
        var key = doc["k"].AsString;
        if (!_instruments.TryGet(key, out var instrument) || !AlertConditions.TryParse(doc["c"].AsString, out var condition))
        {
            // Kept in the file: the instrument may come back with the next instruments file.
            LogSkipped(doc["_id"].AsString, key);
            return null;
        }

        return new Alert(doc["_id"].AsString, doc["o"].AsString, ownedByConnection: false, instrument.Id, key, condition,
            doc["v"].AsDouble, doc["r"].AsBoolean, doc["n"].AsString, DateTimeOffset.FromUnixTimeMilliseconds(doc["ca"].AsInt64))
        {
            State = (AlertState)doc["s"].AsInt32,
            FiredAtUs = doc["fa"].AsInt64,
            FiredPrice = doc["fp"].AsDouble,
            FireCount = doc["fc"].AsInt32,
        };
    }

    [LoggerMessage(EventId = 380, Level = LogLevel.Information, Message = "Alerts {Path} opened: {Alerts} alerts")]
    private partial void LogOpened(string path, int alerts);

    [LoggerMessage(EventId = 381, Level = LogLevel.Error, Message = "Alerts {Path}: write failed, retried in a second; no notification goes out before it lands: {Error}")]
    private partial void LogWriteFailed(string path, string error);

    [LoggerMessage(EventId = 382, Level = LogLevel.Warning, Message = "Alert {Id} is for instrument {Key}, which is not in the instrument list: kept in the file, not armed")]
    private partial void LogSkipped(string id, string key);

    [LoggerMessage(EventId = 388, Level = LogLevel.Information, Message = "Alerts shared through NATS: no alerts file; the key-value bucket is their store (evaluated here: {Evaluates})")]
    private partial void LogShared(bool evaluates);

    [LoggerMessage(EventId = 389, Level = LogLevel.Information, Message = "Alert {Id}: fire {FireCount} dropped, the alert was deleted or changed in the shared bucket meanwhile")]
    private partial void LogConflict(string id, int fireCount);

    [LoggerMessage(EventId = 390, Level = LogLevel.Warning, Message = "Alert {Id}: its new state was not written to NATS before the stop")]
    private partial void LogUnshared(string id);

    [LoggerMessage(EventId = 391, Level = LogLevel.Warning, Message = "Notification {Id} was not written to NATS before the stop: the alert lists as fired; the evaluator's next start creates it")]
    private partial void LogUnnotified(string id);

    [LoggerMessage(EventId = 392, Level = LogLevel.Information, Message = "Alert {Id}: fire {FireCount} is stored already (the bucket holds fire {Stored}: an earlier attempt whose answer was lost, or another evaluator): notified once")]
    private partial void LogStoredAlready(string id, int fireCount, int stored);

    [LoggerMessage(EventId = 383, Level = LogLevel.Warning, Message = "Alerts {Path}: the last writes did not finish within the stop bound")]
    private partial void LogStopTimeout(string path);
}
