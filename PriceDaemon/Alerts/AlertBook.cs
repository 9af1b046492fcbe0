using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Alerts;

/// <summary>
/// Every armed price alert, by instrument, evaluated on every tick before the throttle (a crossing the throttle merges
/// away still fires). Per instrument the alerts wait on four sorted lines (<see cref="TriggerLine"/>): a tick costs a
/// look at the end of each, O(1) when nothing fires and O(fired) when something does, allocation-free, whatever the
/// number of alerts. Firing only changes the alert's state and queues the work for <see cref="AlertWriter"/>, which
/// stores it and sends the notification off the tick thread.
/// </summary>
/// <remarks>
/// Each instrument's alerts have their own lock, taken by the tick thread only for instruments that have alerts and
/// by sockets and HTTP only to add, delete or list one: never held for I/O.
/// </remarks>
internal sealed partial class AlertBook : ITickObserver
{
    private readonly InstrumentRegistry _instruments;
    private readonly PriceCache _cache;
    private readonly AlertOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<AlertBook> _logger;
    private readonly Bucket?[] _buckets;
    private readonly double[] _close; // previous close per instrument, for the change conditions; 0 not known yet
    private readonly double[] _last; // last traded price per instrument seen here; 0 none yet
    // The price cache's close and last price, read by Warm before a bucket's lock is taken: under the lock nothing enters
    // a read scope, so the tick thread (Observe takes the same lock) never waits behind a reader waiting for a slot.
    private readonly double[] _cachedClose;
    private readonly double[] _cachedLast;
    private readonly ConcurrentDictionary<string, OwnerList> _owners = new(StringComparer.Ordinal);
    private readonly IAlertReplica? _replica; // a NATS deployment: users' alerts live in the shared bucket
    private readonly bool _evaluatesUsers; // false on a NATS edge: users' alerts are listed here, evaluated by the ingest
    private readonly ConcurrentDictionary<string, byte> _deleted = new(StringComparer.Ordinal); // deleted here, until the bucket's delete comes back
    private readonly ConcurrentDictionary<string, string> _ownerOf = new(StringComparer.Ordinal); // shared alerts: id to owner (a bucket delete names only the key)
    private readonly ConcurrentDictionary<string, (ulong Revision, long At)> _gone = new(StringComparer.Ordinal); // bucket deletes seen lately: a late put of the alert is older
    private bool _loaded; // shared alerts: the bucket's content is in this book (NatsPushes' first watch pass)
    private readonly Channel<AlertWork> _work;
    private readonly ConcurrentDictionary<string, RateWindow> _rates = new(StringComparer.Ordinal);

    // Counters for /metrics and tests.
    internal long Fired;
    internal long Deferred; // fires put off because the writer's queue was full
    internal long Held; // alerts in the book, any state

    public AlertBook(InstrumentRegistry instruments, PriceCache cache, IOptions<AlertOptions> options, TimeProvider time, ILogger<AlertBook> logger, IAlertReplica? replica = null)
    {
        _replica = replica;
        _evaluatesUsers = replica?.Evaluates ?? true;
        _instruments = instruments;
        _cache = cache;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _buckets = new Bucket?[instruments.Count];
        _close = new double[instruments.Count];
        _last = new double[instruments.Count];
        _cachedClose = new double[instruments.Count];
        _cachedLast = new double[instruments.Count];
        _work = Channel.CreateBounded<AlertWork>(new BoundedChannelOptions(_options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>What the writer persists and delivers, in order.</summary>
    public ChannelReader<AlertWork> Work => _work.Reader;

    public int MaxPerOwner => _options.MaxPerUser;

    public AlertOptions Options => _options;

    /// <summary>
    /// False in a NATS deployment until the alerts bucket's content is in this book (its load can outlast
    /// <c>Nats:WarmTimeoutMs</c>): users' alert requests are then answered <c>alerts_unavailable</c>, not with an empty
    /// list and a limit counted against nothing.
    /// </summary>
    public bool Ready => _replica is null || Volatile.Read(ref _loaded);

    /// <summary>The alerts bucket's content is in this book (<see cref="Ready"/>).</summary>
    public void Loaded() => Volatile.Write(ref _loaded, true);

    /// <inheritdoc />
    public void Observe(in Tick tick)
    {
        var id = tick.InstrumentId;
        var price = tick.LastPrice;
        _last[id] = price;
        var bucket = Volatile.Read(ref _buckets[id]);
        if (tick.PreviousClose > 0 && tick.PreviousClose != _close[id])
        {
            _close[id] = tick.PreviousClose;
            if (bucket is not null)
            {
                lock (bucket)
                {
                    Relevel(bucket, id);
                    bucket.Refresh();
                }
            }
        }

        // Most ticks pass no line: four doubles in the bucket say so without the lock or the lines' arrays. They are
        // written under the lock; a read that misses a change made this instant sees it on the next tick.
        if (bucket is null || !bucket.Passes(price))
        {
            return;
        }

        lock (bucket)
        {
            Evaluate(bucket, price, tick.ExchangeTimeUs);
            bucket.Refresh();
        }
    }

    private void Evaluate(Bucket bucket, double price, long timeUs)
    {
        // Resets first: a crossing alert waiting below its line arms on the tick that goes below; the same tick cannot
        // also be at or above it, so the order changes nothing but keeps each pass over one line.
        while (bucket.ResetDown.TryPeekPassed(price, out var alert) || bucket.ResetUp.TryPeekPassed(price, out alert))
        {
            (AlertConditions.IsUpward(alert.Condition) ? bucket.ResetDown : bucket.ResetUp).Pop();
            alert.State = AlertState.Armed;
            alert.Level = Threshold(alert);
            Line(bucket, alert).Add(alert, alert.Level);
            // Not stored if the writer is behind: a restart then waits for the reset again, which is the safe side.
            _work.Writer.TryWrite(new AlertWork(AlertWorkKind.Changed, Snapshot(alert)));
        }

        while (bucket.FireUp.TryPeekPassed(price, out var alert) || bucket.FireDown.TryPeekPassed(price, out alert))
        {
            var line = AlertConditions.IsUpward(alert.Condition) ? bucket.FireUp : bucket.FireDown;
            var next = alert.Repeat ? AlertState.Resetting : AlertState.Fired;
            var fired = new AlertSnapshot(alert, next, timeUs, price, alert.FireCount + 1);
            if (!_work.Writer.TryWrite(new AlertWork(AlertWorkKind.Fired, fired)))
            {
                // The writer is behind: the alert stays armed and fires on a later tick; the tick thread never waits.
                Deferred++;
                return;
            }

            line.Pop();
            alert.State = next;
            alert.FiredAtUs = timeUs;
            alert.FiredPrice = price;
            alert.FireCount++;
            Fired++;
            if (next == AlertState.Resetting)
            {
                alert.Level = ResetLevel(alert);
                ResetLine(bucket, alert).Add(alert, alert.Level);
            }
        }
    }

    /// <summary>
    /// Adds an alert: armed on its line, or for a crossing alert created on its firing side, waiting for the price to
    /// come back first. Null and an error code when refused. <paramref name="stored"/> completes once it is stored,
    /// with null, or with <see cref="AlertErrors.Unavailable"/> when a shared store did not take it (nothing was kept).
    /// </summary>
    public string? TryAdd(Alert alert, out Task<string?> stored)
    {
        stored = NotStored;
        var list = _owners.GetOrAdd(alert.Owner, static _ => new OwnerList());
        if (_replica is not null && !alert.OwnedByConnection)
        {
            if (!Ready)
            {
                return AlertErrors.Unavailable;
            }

            lock (list)
            {
                // Counted from this daemon's copy of the bucket and its own creates in flight (see README: the limit).
                if (list.Count + list.Creating >= _options.MaxPerUser)
                {
                    return AlertErrors.Limit;
                }

                list.Creating++;
            }

            Warm(alert.InstrumentId);
            lock (BucketOf(alert.InstrumentId))
            {
                Initial(alert);
            }

            stored = CreateSharedAsync(list, alert, _replica);
            return null;
        }

        Warm(alert.InstrumentId);
        lock (list)
        {
            if (list.Count >= _options.MaxPerUser)
            {
                return AlertErrors.Limit;
            }

            var bucket = BucketOf(alert.InstrumentId);
            lock (bucket)
            {
                Initial(alert);
                Place(bucket, alert);
                if (!alert.OwnedByConnection)
                {
                    // Queued under the lock: a fire of this alert can only queue after its creation.
                    var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    if (!_work.Writer.TryWrite(new AlertWork(AlertWorkKind.Created, Snapshot(alert), done)))
                    {
                        RemoveFromLines(bucket, alert);
                        return AlertErrors.Busy;
                    }

                    stored = Stored(done.Task);
                }

                bucket.Count++;
                bucket.Refresh();
            }

            list.Add(alert);
        }

        Interlocked.Increment(ref Held);
        return null;
    }

    /// <summary>Its state at creation: armed, or for a crossing alert created on its firing side, resetting. Under the lock.</summary>
    private void Initial(Alert alert)
    {
        var threshold = Threshold(alert);
        var last = LastPrice(alert.InstrumentId);
        var upward = AlertConditions.IsUpward(alert.Condition);
        var onFiringSide = last > 0 && (upward ? last >= threshold : last <= threshold);
        alert.State = AlertConditions.IsCrossing(alert.Condition) && onFiringSide ? AlertState.Resetting : AlertState.Armed;
        alert.Level = threshold;
    }

    /// <summary>On the line its state waits on, at its level; a user's alert only where this daemon evaluates them.</summary>
    private void Place(Bucket bucket, Alert alert)
    {
        if (!alert.OwnedByConnection && !_evaluatesUsers)
        {
            return;
        }

        switch (alert.State)
        {
            case AlertState.Armed:
                alert.Level = Threshold(alert);
                Line(bucket, alert).Add(alert, alert.Level);
                break;
            case AlertState.Resetting:
                alert.Level = ResetLevel(alert);
                ResetLine(bucket, alert).Add(alert, alert.Level);
                break;
        }
    }

    private static readonly Task<string?> NotStored = Task.FromResult<string?>(null);

    private static async Task<string?> Stored(Task done)
    {
        await done.ConfigureAwait(false);
        return null;
    }

    /// <summary>A user's alert in a NATS deployment: in the bucket first, then in this book (as the watch would put it).</summary>
    private async Task<string?> CreateSharedAsync(OwnerList list, Alert alert, IAlertReplica replica)
    {
        try
        {
            var (result, revision) = await replica.CreateAsync(Snapshot(alert), CancellationToken.None).ConfigureAwait(false);
            if (result != Push.ReplicaWrite.Written)
            {
                return AlertErrors.Unavailable;
            }

            Apply(alert, revision);
            return null;
        }
        finally
        {
            lock (list)
            {
                list.Creating--;
            }
        }
    }

    /// <summary>
    /// Counts one create or delete of <paramref name="owner"/> against <see cref="AlertOptions.ChangesPerMinute"/>;
    /// false, and when the window reopens, past it.
    /// </summary>
    public bool TryChange(string owner, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        var limit = _options.ChangesPerMinute;
        if (limit == 0)
        {
            return true;
        }

        var window = _rates.GetOrAdd(owner, static _ => new RateWindow());
        lock (window)
        {
            var now = _time.GetTimestamp();
            var elapsed = _time.GetElapsedTime(window.Start, now);
            if (window.Count == 0 || elapsed >= TimeSpan.FromMinutes(1))
            {
                window.Start = now;
                window.Count = 0;
                elapsed = TimeSpan.Zero;
            }

            retryAfter = TimeSpan.FromMinutes(1) - elapsed;
            return ++window.Count <= limit;
        }
    }

    /// <summary>Arms <see cref="AlertOptions.SyntheticAlerts"/> alerts of no user, for load runs (see there).</summary>
    public void ArmSynthetic()
    {
        var count = _options.SyntheticAlerts;
        var random = new Random(18);
        for (var i = 0; i < count; i++)
        {
            var instrument = _instruments[i % _instruments.Count];
            var upward = random.Next(2) == 0;
            var distance = 0.05 + (random.NextDouble() * 0.45);
            var price = Math.Round(instrument.ReferencePrice * (upward ? 1 + distance : 1 - distance), 2);
            // Owned by a "connection" of no socket: not stored, delivered nowhere; one owner per MaxPerUser alerts keeps the limit.
            var alert = new Alert($"synthetic-{i}", $"synthetic:{i / _options.MaxPerUser}", ownedByConnection: true, instrument.Id, instrument.Key,
                upward ? AlertCondition.Above : AlertCondition.Below, price, repeat: false, "", _time.GetUtcNow());
            _ = TryAdd(alert, out _);
        }
    }

    /// <summary>Puts back an alert read from the file at start, in the state it was stored with.</summary>
    public void Load(Alert alert)
    {
        var list = _owners.GetOrAdd(alert.Owner, static _ => new OwnerList());
        lock (list)
        {
            list.Add(alert);
        }

        Insert(alert);
    }

    /// <summary>An alert now in its owner's list goes into its instrument's bucket, on its line, in the state it holds.</summary>
    private void Insert(Alert alert)
    {
        Warm(alert.InstrumentId);
        var bucket = BucketOf(alert.InstrumentId);
        lock (bucket)
        {
            bucket.Count++;
            Place(bucket, alert);
            bucket.Refresh();
        }

        Interlocked.Increment(ref Held);
    }

    /// <summary>
    /// A NATS deployment: an alert as the shared bucket holds it at <paramref name="revision"/> (the watch's, or this
    /// daemon's own create). New here: added (where this daemon evaluates, a fire stored but not known notified is
    /// queued to be notified). Known: where this daemon evaluates, its own state (and the revision it was written at)
    /// stands unless another evaluator fired it further; elsewhere the bucket's state is taken. An alert deleted here,
    /// or whose delete the bucket showed after this revision, stays deleted. False when nothing changed.
    /// </summary>
    public bool Apply(Alert incoming, ulong revision)
    {
        if (_deleted.ContainsKey(incoming.Id) || (_gone.TryGetValue(incoming.Id, out var gone) && gone.Revision > revision))
        {
            return false;
        }

        var list = _owners.GetOrAdd(incoming.Owner, static _ => new OwnerList());
        Alert? held;
        lock (list)
        {
            held = list.Find(a => a.Id == incoming.Id);
            if (held is null)
            {
                list.Add(incoming);
            }
        }

        if (held is null)
        {
            _ownerOf[incoming.Id] = incoming.Owner;
            incoming.Revision = revision;
            Insert(incoming);
            if (_evaluatesUsers && incoming.FireCount > incoming.Notified)
            {
                // Its evaluator stopped between the fire's state and the notification: created now (once per fire id).
                Queue(new AlertWork(AlertWorkKind.Unnotified, Current(incoming)));
            }

            return true;
        }

        Warm(held.InstrumentId);
        var bucket = BucketOf(held.InstrumentId);
        lock (bucket)
        {
            if (revision <= held.Revision || held.Deleted)
            {
                return false;
            }

            held.Notified = Math.Max(held.Notified, incoming.Notified);
            if (_evaluatesUsers && incoming.FireCount <= held.FireCount)
            {
                // This daemon's own write coming back, or another evaluator's of a fire this one made too: the revision
                // stays that of the state held, so the writer's next write over it is refused and reads what is stored.
                return false;
            }

            held.Revision = revision;
            RemoveFromLines(bucket, held);
            held.State = incoming.State;
            held.FiredAtUs = incoming.FiredAtUs;
            held.FiredPrice = incoming.FiredPrice;
            held.FireCount = incoming.FireCount;
            Place(bucket, held);
            bucket.Refresh();
        }

        return true;
    }

    /// <summary>
    /// A NATS deployment: the bucket no longer holds alert <paramref name="id"/> (deleted on some daemon) since
    /// <paramref name="revision"/>; remembered a minute, so a create of it still on its way here does not put it back.
    /// False when it was not held here.
    /// </summary>
    public bool Removed(string id, ulong revision)
    {
        var now = _time.GetTimestamp();
        if (_gone.Count >= 1024)
        {
            foreach (var (key, seen) in _gone)
            {
                if (_time.GetElapsedTime(seen.At, now) > TimeSpan.FromMinutes(1))
                {
                    _gone.TryRemove(key, out _);
                }
            }
        }

        _gone[id] = (revision, now);
        _deleted.TryRemove(id, out _);
        if (_ownerOf.TryRemove(id, out var owner) && _owners.TryGetValue(owner, out var list) && Take(list, id) is { } alert)
        {
            Remove(alert, out _);
            return true;
        }

        return false;
    }

    /// <summary>The writer stored <paramref name="alert"/>'s state at <paramref name="revision"/> in the shared bucket.</summary>
    public void Stored(Alert alert, ulong revision)
    {
        lock (BucketOf(alert.InstrumentId))
        {
            alert.Revision = Math.Max(alert.Revision, revision);
        }
    }

    /// <summary>The revision a write of <paramref name="alert"/>'s state goes over.</summary>
    public ulong RevisionOf(Alert alert)
    {
        lock (BucketOf(alert.InstrumentId))
        {
            return alert.Revision;
        }
    }

    private static Alert? Take(OwnerList list, string id)
    {
        lock (list)
        {
            var alert = list.Find(a => a.Id == id);
            if (alert is not null)
            {
                list.Remove(alert);
            }

            return alert;
        }
    }

    /// <summary>
    /// Deletes <paramref name="owner"/>'s alert <paramref name="id"/>; false when that owner has no such alert.
    /// <paramref name="stored"/> as for <see cref="TryAdd"/>: with a shared store, the alert stays until the store took the delete.
    /// </summary>
    public bool TryDelete(string owner, string id, out Task<string?> stored)
    {
        stored = NotStored;
        if (!_owners.TryGetValue(owner, out var list))
        {
            return false;
        }

        Alert? alert;
        lock (list)
        {
            alert = list.Find(a => a.Id == id);
        }

        if (alert is null)
        {
            return false;
        }

        if (_replica is not null && !alert.OwnedByConnection)
        {
            stored = DeleteSharedAsync(list, alert, _replica);
            return true;
        }

        if (Take(list, id) is null)
        {
            return false; // deleted meanwhile by another request
        }

        Remove(alert, out var removed);
        stored = Stored(removed);
        return true;
    }

    private async Task<string?> DeleteSharedAsync(OwnerList list, Alert alert, IAlertReplica replica)
    {
        // Until the bucket's delete comes back through the watch, an older write of it coming back does not restore it;
        // set before the write, as the watch may bring the delete (and clear this) before the write's answer.
        _deleted[alert.Id] = 0;
        if (await replica.DeleteAsync(alert, CancellationToken.None).ConfigureAwait(false) != Push.ReplicaWrite.Written)
        {
            _deleted.TryRemove(alert.Id, out _);
            return AlertErrors.Unavailable;
        }

        _ownerOf.TryRemove(alert.Id, out _);
        if (Take(list, alert.Id) is not null)
        {
            Remove(alert, out _);
        }

        return null;
    }

    /// <summary>Deletes every alert of <paramref name="owner"/> (an anonymous connection's, when it closes).</summary>
    public void DeleteAll(string owner)
    {
        _rates.TryRemove(owner, out _);
        if (!_owners.TryRemove(owner, out var list))
        {
            return;
        }

        Alert[] alerts;
        lock (list)
        {
            alerts = [.. list];
            list.Clear();
        }

        foreach (var alert in alerts)
        {
            Remove(alert, out _);
        }
    }

    /// <summary>The owner's alerts with their state, oldest first.</summary>
    public List<AlertSnapshot> List(string owner)
    {
        if (!_owners.TryGetValue(owner, out var list))
        {
            return [];
        }

        Alert[] alerts;
        lock (list)
        {
            alerts = [.. list];
        }

        var result = new List<AlertSnapshot>(alerts.Length);
        foreach (var alert in alerts)
        {
            var bucket = BucketOf(alert.InstrumentId);
            lock (bucket)
            {
                result.Add(Snapshot(alert));
            }
        }

        return result;
    }

    /// <summary>One alert's state now, taken under its instrument's lock.</summary>
    public AlertSnapshot Current(Alert alert)
    {
        var bucket = BucketOf(alert.InstrumentId);
        lock (bucket)
        {
            return Snapshot(alert);
        }
    }

    /// <summary>One alert's state, for the writer's document.</summary>
    public static AlertSnapshot Snapshot(Alert alert) => new(alert, alert.State, alert.FiredAtUs, alert.FiredPrice, alert.FireCount);

    /// <summary>The writer's queue is closed: a stop. Fires after this are not taken.</summary>
    public void Complete() => _work.Writer.TryComplete();

    private void Remove(Alert alert, out Task stored)
    {
        stored = Task.CompletedTask;
        var bucket = BucketOf(alert.InstrumentId);
        lock (bucket)
        {
            RemoveFromLines(bucket, alert);
            bucket.Refresh();
            alert.Deleted = true;
            bucket.Count--;
            if (!alert.OwnedByConnection && _replica is null)
            {
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                // A delete that finds the queue full is still done in memory; the file catches up at the next start
                // only if the write went out, so wait for room instead of dropping it.
                if (_work.Writer.TryWrite(new AlertWork(AlertWorkKind.Deleted, Snapshot(alert), done)))
                {
                    stored = done.Task;
                }
                else
                {
                    stored = DeleteLaterAsync(new AlertWork(AlertWorkKind.Deleted, Snapshot(alert), done));
                }
            }
        }

        Interlocked.Decrement(ref Held);
    }

    /// <summary>Queues work off the tick path: waits for room if the queue is full; dropped at a stop (the queue closed).</summary>
    private void Queue(AlertWork work)
    {
        if (!_work.Writer.TryWrite(work))
        {
            _ = DeleteLaterAsync(work);
        }
    }

    /// <summary>Waits for room in the writer's queue; at a stop (the queue closed) the delete stays in memory only.</summary>
    private async Task DeleteLaterAsync(AlertWork work)
    {
        try
        {
            await _work.Writer.WriteAsync(work).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            return;
        }

        if (work.Done is { } done)
        {
            await done.Task.ConfigureAwait(false);
        }
    }

    private static void RemoveFromLines(Bucket bucket, Alert alert)
    {
        _ = bucket.FireUp.Remove(alert) || bucket.FireDown.Remove(alert) || bucket.ResetUp.Remove(alert) || bucket.ResetDown.Remove(alert);
    }

    /// <summary>The previous close changed (a new day, or the feed's own close arrived): percent alerts move their lines.</summary>
    private void Relevel(Bucket bucket, int id)
    {
        var moved = new List<Alert>();
        static bool IsPercent(Alert a) => AlertConditions.IsPercent(a.Condition);
        bucket.FireUp.RemoveAll(IsPercent, moved);
        bucket.FireDown.RemoveAll(IsPercent, moved);
        bucket.ResetUp.RemoveAll(IsPercent, moved);
        bucket.ResetDown.RemoveAll(IsPercent, moved);
        foreach (var alert in moved)
        {
            if (alert.State == AlertState.Armed)
            {
                alert.Level = Threshold(alert);
                Line(bucket, alert).Add(alert, alert.Level);
            }
            else
            {
                alert.Level = ResetLevel(alert);
                ResetLine(bucket, alert).Add(alert, alert.Level);
            }
        }
    }

    /// <summary>The price at which it fires: its price, or the close moved by its percent.</summary>
    private double Threshold(Alert alert) =>
        AlertConditions.IsPercent(alert.Condition) ? Close(alert.InstrumentId) * (1 + alert.Value / 100) : alert.Value;

    /// <summary>
    /// Where a resetting alert arms again: past the hysteresis band after it fired (repeat), or just past its threshold
    /// for a crossing alert that has not fired yet (created on the firing side).
    /// </summary>
    private double ResetLevel(Alert alert)
    {
        var threshold = Threshold(alert);
        if (alert.FireCount == 0)
        {
            return threshold;
        }

        var band = threshold * _options.HysteresisPercent / 100;
        return AlertConditions.IsUpward(alert.Condition) ? threshold - band : threshold + band;
    }

    private double Close(int id)
    {
        var close = _close[id];
        if (close > 0)
        {
            return close;
        }

        close = _cachedClose[id];
        return close > 0 ? close : _instruments[id].ReferencePrice;
    }

    /// <summary>
    /// The last price seen on the tick path, else the cache's as <see cref="Warm"/> last read it (a restart before the
    /// first tick); 0 unknown.
    /// </summary>
    public double LastPrice(int id)
    {
        var last = _last[id];
        return last > 0 ? last : _cachedLast[id];
    }

    /// <summary>
    /// Reads the cache's values of the instrument for <see cref="Close"/> and <see cref="LastPrice"/>, which fall back on
    /// them before the instrument's first tick (or, for the close, when the feed sends none). Called before a bucket's
    /// lock, never under it: <see cref="PriceCache.TryGetValues"/> enters a read scope, which waits when every slot is
    /// busy, and the tick thread's <see cref="Observe"/> would wait behind it for the lock.
    /// </summary>
    private void Warm(int id)
    {
        if ((_close[id] <= 0 || _last[id] <= 0) && _cache.TryGetValues(id, out var cached))
        {
            Volatile.Write(ref _cachedClose[id], cached.PreviousClose);
            Volatile.Write(ref _cachedLast[id], cached.LastPrice);
        }
    }

    private static TriggerLine Line(Bucket bucket, Alert alert) =>
        AlertConditions.IsUpward(alert.Condition) ? bucket.FireUp : bucket.FireDown;

    // An upward alert resets when the price goes back down below its reset level, and the other way round.
    private static TriggerLine ResetLine(Bucket bucket, Alert alert) =>
        AlertConditions.IsUpward(alert.Condition) ? bucket.ResetDown : bucket.ResetUp;

    private Bucket BucketOf(int id)
    {
        var bucket = Volatile.Read(ref _buckets[id]);
        if (bucket is not null)
        {
            return bucket;
        }

        Interlocked.CompareExchange(ref _buckets[id], new Bucket(), null);
        return _buckets[id]!;
    }

    /// <summary>One owner's alerts, and (shared store) how many of their creates are on their way to it.</summary>
    private sealed class OwnerList : List<Alert>
    {
        public int Creating;
    }

    private sealed class RateWindow
    {
        public long Start;
        public int Count;
    }

    private sealed class Bucket
    {
        public readonly TriggerLine FireUp = new(upward: true, strict: false); // price >= line
        public readonly TriggerLine FireDown = new(upward: false, strict: false); // price <= line
        public readonly TriggerLine ResetUp = new(upward: true, strict: true); // price > line: a downward alert re-arms
        public readonly TriggerLine ResetDown = new(upward: false, strict: true); // price < line: an upward alert re-arms
        public int Count; // alerts of this instrument in any state, fired ones included

        // The lines' edges, copied here under the lock after every change (Refresh): the tick path's whole test.
        private double _fireUp = double.PositiveInfinity;
        private double _fireDown = double.NegativeInfinity;
        private double _resetUp = double.PositiveInfinity;
        private double _resetDown = double.NegativeInfinity;

        public bool Passes(double price) =>
            price >= Volatile.Read(ref _fireUp) || price <= Volatile.Read(ref _fireDown)
            || price > Volatile.Read(ref _resetUp) || price < Volatile.Read(ref _resetDown);

        public void Refresh()
        {
            Volatile.Write(ref _fireUp, FireUp.Edge);
            Volatile.Write(ref _fireDown, FireDown.Edge);
            Volatile.Write(ref _resetUp, ResetUp.Edge);
            Volatile.Write(ref _resetDown, ResetDown.Edge);
        }
    }
}

/// <summary>Error codes of the alert actions (also in <see cref="Sockets.ErrorCodes"/>).</summary>
internal static class AlertErrors
{
    public const string Limit = "alert_limit";
    public const string Busy = "alerts_busy";

    /// <summary>A shared store (NATS) did not take the change in time: nothing was kept (<c>alerts_unavailable</c>, HTTP 503).</summary>
    public const string Unavailable = "alerts_unavailable";
}
