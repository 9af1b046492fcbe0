using System.Collections.Concurrent;
using System.Net.WebSockets;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Sockets;

/// <summary>
/// Every open session. Tells them of feed status changes, looks at each once a second (cuts one that stopped
/// reading, runs the slow-consumer flow control of the others, closes the idle ones), and at
/// shutdown closes all of them with 1001: last in the shutdown sequence (Hosting/ShutdownSequence.cs), after
/// the last prices went to fan-out, and before Kestrel waits for their requests to end.
/// </summary>
internal sealed partial class SessionRegistry : IHostedService, IDisposable
{
    private readonly ConcurrentDictionary<long, PriceSession> _sessions = new();

    // Signed-in users' sessions by sub, for user events. Copy on write under _usersLock: a connect or disconnect
    // builds a new array, so delivery reads a snapshot without a lock.
    private readonly ConcurrentDictionary<string, PriceSession[]> _users = new(StringComparer.Ordinal);
    private readonly Lock _usersLock = new();
    private readonly FeedStatus _feedStatus;
    private readonly PriceCache _cache;
    private readonly PipelineMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger<SessionRegistry> _logger;
    private readonly long _slowConsumerTicks;
    private readonly long _idleTicks; // 0: no idle timeout
    private readonly int _keepAliveSeconds; // 0: no pings
    // Below this many price frames a second the pipeline is quiet enough for an opted-in storm compaction.
    private const long QuietFramesPerSecond = 100;

    private readonly StormCompaction _compaction; // sweeper only
    private long _framesAtLastSweep; // sweeper only
    private ITimer? _sweeper;
    private long _nextId;
    private int _sweeping; // 1 while a sweep runs: the timer does not wait for one to end
    private long _sweptAt; // the clock reading of the last sweep that ended
    private volatile bool _stopping; // new sockets are refused
    private readonly CancellationTokenSource _closedSource = new();
    private volatile bool _closed; // every session has been asked to close

    public SessionRegistry(
        FeedStatus feedStatus,
        PriceCache cache,
        PipelineMetrics metrics,
        IOptions<LimitsOptions> limits,
        TimeProvider time,
        ILogger<SessionRegistry> logger)
    {
        _feedStatus = feedStatus;
        _cache = cache;
        _metrics = metrics;
        _time = time;
        _logger = logger;
        _slowConsumerTicks = limits.Value.SlowConsumerSeconds * time.TimestampFrequency;
        _idleTicks = limits.Value.IdleTimeoutSeconds * time.TimestampFrequency;
        _keepAliveSeconds = limits.Value.KeepAliveSeconds;
        _compaction = new StormCompaction(limits.Value.CompactAfterConnections, time.TimestampFrequency);
    }

    /// <summary>New price sockets are refused (503): the daemon is stopping.</summary>
    public bool IsStopping => _stopping;

    /// <summary>The stop's first step: handshakes from now on are refused; open sessions go on until <see cref="CloseAll"/>.</summary>
    public void StopAccepting() => _stopping = true;

    /// <summary>
    /// Cancelled by <see cref="CloseAll"/>, the drain's last step, just before Kestrel stops: a connection still waiting
    /// for its request head then is cut. Not the host's stopping token: that fires at SIGTERM, before the drain, while new
    /// connections must still be answered (a 503 from /health/ready and for a new price socket, REST as usual).
    /// </summary>
    public CancellationToken Closed => _closedSource.Token;

    public int Count => _sessions.Count;

    /// <summary>
    /// The clock reading of the last sweep that ended (0 before the first); for tests. A FakeTimeProvider runs a due timer
    /// on whichever thread reads the clock first, and its Advance returns at once while another thread (the throttle, a
    /// send pass) is doing so: a test that moves the clock waits for this, not for Advance, to know the sweep has run.
    /// </summary>
    internal long SweptAt => Volatile.Read(ref _sweptAt);

    public IEnumerable<PriceSession> Sessions => _sessions.Values;

    /// <summary>The open sessions of the user whose token's <c>sub</c> is <paramref name="subject"/>; a snapshot.</summary>
    public PriceSession[] SessionsOf(string subject) => _users.TryGetValue(subject, out var sessions) ? sessions : [];

    public long NextId() => Interlocked.Increment(ref _nextId);

    public void Add(PriceSession session)
    {
        _sessions[session.Id] = session;
        if (session.Subject is { } subject)
        {
            lock (_usersLock)
            {
                _users[subject] = _users.TryGetValue(subject, out var held) ? [.. held, session] : [session];
            }
        }

        Interlocked.Increment(ref _metrics.SessionsOpened);
        if (_closed)
        {
            session.BeginClose(WebSocketCloseStatus.EndpointUnavailable, "server shutting down");
        }
    }

    public void Remove(PriceSession session)
    {
        if (_sessions.TryRemove(session.Id, out _))
        {
            if (session.Subject is { } subject)
            {
                lock (_usersLock)
                {
                    if (_users.TryGetValue(subject, out var held))
                    {
                        var rest = Array.FindAll(held, s => s != session);
                        if (rest.Length == 0)
                        {
                            _users.TryRemove(subject, out _);
                        }
                        else
                        {
                            _users[subject] = rest;
                        }
                    }
                }
            }

            Interlocked.Increment(ref _metrics.SessionsClosed);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _feedStatus.Changed += OnFeedStatus;
        _sweeper = _time.CreateTimer(static s => ((SessionRegistry)s!).Sweep(), this, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _feedStatus.Changed -= OnFeedStatus;
        CloseAll();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _sweeper?.Dispose();
        _closedSource.Dispose();
    }

    /// <summary>Closes every session with 1001, and each one that opens from now on; idempotent.</summary>
    public void CloseAll()
    {
        if (_closed)
        {
            return;
        }

        _stopping = true;
        _closed = true;
        _closedSource.Cancel();
        LogClosingAll(_sessions.Count);
        foreach (var session in _sessions.Values)
        {
            // The last prices of the stop were fanned out just before this: they go out ahead of the close.
            session.BeginClose(WebSocketCloseStatus.EndpointUnavailable, "server shutting down", pricesFirst: true);
        }
    }

    private void OnFeedStatus(FeedState state, string message)
    {
        // One frame for everyone: the same bytes go to every session.
        var frame = ControlFrames.Status(state, message, _cache.Epoch);
        foreach (var session in _sessions.Values)
        {
            session.EnqueueControl(frame);
        }
    }

    private void Sweep()
    {
        // The timer does not wait for a sweep to end: under load one can take over a second. Overlapping sweeps would
        // run each socket's flow-control state machine on two threads at once, so a late one is skipped.
        if (Interlocked.Exchange(ref _sweeping, 1) != 0)
        {
            return;
        }

        var now = _time.GetTimestamp();
        try
        {
            // The dictionary's own enumerator, not Values: Values copies every session into a new list, which at
            // 20,000 sockets is a 160 KB large-object allocation every second.
            foreach (var (_, session) in _sessions)
            {
                if (!session.IsClosing && session.IsStalled(now, _slowConsumerTicks))
                {
                    Interlocked.Increment(ref _metrics.SlowConsumersClosed);
                    LogSlowConsumer(session.Id, session.Remote, _slowConsumerTicks / _time.TimestampFrequency);
                    // It is not reading, so a close frame would never arrive: cut the connection.
                    session.Abort();
                }
                else
                {
                    session.CheckFlow(now);
                    session.KeepAlive(_keepAliveSeconds);
                }

                if (_idleTicks > 0 && !session.IsClosing && session.IsIdle(now, _idleTicks))
                {
                    LogIdle(session.Id, session.Remote, _idleTicks / _time.TimestampFrequency);
                    // It still reads, so it gets a proper close: a client that was just quiet reconnects cleanly.
                    session.BeginClose(WebSocketCloseStatus.NormalClosure, "idle timeout");
                }
            }

            // Quiet: fewer frames went out since the last sweep than a collection's pause could hold back noticeably, or
            // there is no feed. A market day's pipeline is never quiet, so an opted-in compaction waits for its end.
            var framesSent = Volatile.Read(ref _metrics.FramesSent);
            var quiet = framesSent - _framesAtLastSweep < QuietFramesPerSecond || !_feedStatus.IsConnected;
            _framesAtLastSweep = framesSent;
            if (_compaction.ShouldCollect(_sessions.Count, now, quiet))
            {
                var (pause, committedBefore, committedAfter) = StormCompaction.Collect();
                LogCompacted(_sessions.Count, (long)pause.TotalMilliseconds, committedBefore >> 20, committedAfter >> 20);
            }
        }
        finally
        {
            Volatile.Write(ref _sweptAt, now);
            Volatile.Write(ref _sweeping, 0);
        }
    }

    [LoggerMessage(EventId = 313, Level = LogLevel.Information, Message = "Connection storm over ({Count} WebSocket connections), pipeline quiet: heap compacted in {PauseMs} ms, committed {BeforeMiB} -> {AfterMiB} MiB")]
    private partial void LogCompacted(int count, long pauseMs, long beforeMiB, long afterMiB);

    [LoggerMessage(EventId = 310, Level = LogLevel.Information, Message = "Closing {Count} WebSocket connections: server shutting down")]
    private partial void LogClosingAll(int count);

    [LoggerMessage(EventId = 311, Level = LogLevel.Warning, Message = "Closing slow consumer {ConnectionId} from {RemoteAddress}: no write completed in {Seconds} s")]
    private partial void LogSlowConsumer(long connectionId, string remoteAddress, long seconds);

    [LoggerMessage(EventId = 312, Level = LogLevel.Information, Message = "Closing idle connection {ConnectionId} from {RemoteAddress}: no client message in {Seconds} s")]
    private partial void LogIdle(long connectionId, string remoteAddress, long seconds);
}
