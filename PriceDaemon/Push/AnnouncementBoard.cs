using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Push;

/// <summary>One announcement: its frame serialized once, for every socket.</summary>
internal sealed record Announcement(string Id, string Level, string Message, DateTimeOffset ExpiresAt, byte[] Frame);

/// <summary>
/// The announcements in force. Each reaches every socket open when it is published and every socket that opens
/// before it expires or is deleted. Held in memory: a restart forgets them, and the backend publishes them again
/// (a decision for now, written in the README).
/// </summary>
internal sealed class AnnouncementBoard
{
    public static readonly string[] Levels = ["info", "warning", "critical"];

    /// <summary>
    /// Most announcements in force at once. A socket gets all of them at connect, with up to 200 replayed
    /// notifications (Push:InboxMaxPerUser), in a control queue of 256: more would cut it before it began.
    /// </summary>
    public const int MaxActive = 50;

    private readonly ConcurrentDictionary<string, Announcement> _active = new(StringComparer.Ordinal);
    private readonly Lock _gate = new(); // publishes: the cap check and the add as one step
    private readonly TimeProvider _time;

    public AnnouncementBoard(TimeProvider time, IMeterFactory meterFactory)
    {
        _time = time;
        var meter = meterFactory.Create(PipelineMetrics.MeterName);
        meter.CreateObservableCounter("pricedaemon.announcements.published", () => Volatile.Read(ref Published), "{announcement}", "Announcements published (repeats of an id in force not counted)");
    }

    internal long Published;

    /// <summary>
    /// Adds an announcement: <see cref="AddResult.Duplicate"/> when one with this id is in force already (a
    /// publisher retry), <see cref="AddResult.Full"/> when <see cref="MaxActive"/> others are. Checked and added under
    /// one lock, so concurrent publishes cannot together pass the cap.
    /// </summary>
    public (AddResult Result, Announcement? Announcement) Add(string id, string level, string message, DateTimeOffset expiresAt)
    {
        lock (_gate)
        {
            if (AdmitsLocked(id) is var admits and not AddResult.Added)
            {
                return (admits, null);
            }

            var announcement = new Announcement(id, level, message, expiresAt, PushFrames.Announcement(id, level, message, expiresAt));
            _active[id] = announcement;
            Interlocked.Increment(ref Published);
            return (AddResult.Added, announcement);
        }
    }

    /// <summary>What <see cref="Add"/> would answer now, without adding: a shared board (NATS) asks before it writes.</summary>
    public AddResult Admits(string id)
    {
        lock (_gate)
        {
            return AdmitsLocked(id);
        }
    }

    private AddResult AdmitsLocked(string id)
    {
        var now = _time.GetUtcNow();
        if (_active.TryGetValue(id, out var held) && held.ExpiresAt > now)
        {
            return AddResult.Duplicate;
        }

        // An expired one under this id frees the id; it is replaced either way.
        return _active.Count(a => a.Key != id && a.Value.ExpiresAt > now) >= MaxActive ? AddResult.Full : AddResult.Added;
    }

    /// <summary>
    /// A shared board (NATS): takes an announcement as the bucket holds it, published here or on another daemon, and
    /// runs <paramref name="added"/> (queueing it on this daemon's open sockets) under the lock <see cref="SendActive"/>
    /// takes. The cap was checked where it was published; one in force under this id already is not sent again.
    /// </summary>
    public bool Apply(string id, string level, string message, DateTimeOffset expiresAt, Action<Announcement> added)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            if (expiresAt <= now || (_active.TryGetValue(id, out var held) && held.ExpiresAt > now))
            {
                return false;
            }

            var announcement = new Announcement(id, level, message, expiresAt, PushFrames.Announcement(id, level, message, expiresAt));
            _active[id] = announcement;
            Interlocked.Increment(ref Published);
            added(announcement);
            return true;
        }
    }

    public bool Contains(string id) => _active.ContainsKey(id);

    /// <summary>
    /// Removes one and runs <paramref name="removed"/> (telling open sockets) under the same lock as
    /// <see cref="SendActive"/>: a socket that connects meanwhile gets either the announcement and then its
    /// removal, or neither, never the removal first.
    /// </summary>
    public bool Remove(string id, Action removed)
    {
        lock (_gate)
        {
            if (!_active.TryRemove(id, out _))
            {
                return false;
            }

            removed();
            return true;
        }
    }

    /// <summary>Queues the frame of every announcement in force on a socket that has just connected; drops the expired.</summary>
    public void SendActive(Action<byte[]> send)
    {
        lock (_gate)
        {
            foreach (var frame in ActiveFrames())
            {
                send(frame);
            }
        }
    }

    /// <summary>The frames of the announcements in force now, for a socket that has just connected; drops the expired.</summary>
    private List<byte[]> ActiveFrames()
    {
        var now = _time.GetUtcNow();
        var frames = new List<byte[]>();
        foreach (var (id, announcement) in _active)
        {
            if (announcement.ExpiresAt > now)
            {
                frames.Add(announcement.Frame);
            }
            else
            {
                _active.TryRemove(new KeyValuePair<string, Announcement>(id, announcement));
            }
        }

        return frames;
    }

    public int Count => _active.Count;
}

internal enum AddResult
{
    Added,
    Duplicate,
    Full,
}
