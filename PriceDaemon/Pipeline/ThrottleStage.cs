using System.Threading.Channels;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;

namespace PriceDaemon.Pipeline;

/// <summary>
/// The single reader of the ingest channel and the owner of per-instrument state. Emits at most one
/// update per instrument per <see cref="ThrottleOptions.MinIntervalMs"/>: a tick in an open window is
/// emitted at once; ticks inside a closed window are merged into one pending update (latest price,
/// timestamp and cumulative volume win) that is emitted when the window closes, even if no tick follows.
/// At stop it reads the ingest channel to its end and emits every pending update at once, window closed or
/// not: the day's last tick may sit in a long window, and it must reach the cache, and so storage.
/// </summary>
public sealed partial class ThrottleStage : BackgroundService
{
    // A tick with this id only wakes the loop when a window closes; it carries no price.
    private const int WakeId = -1;

    /// <summary>
    /// How long into the stop a write may still wait for room in a full fan-out channel. Fan-out only does CPU
    /// work, so a channel still full by then is stuck: the remaining frames go to the cache (and storage) only.
    /// </summary>
    internal static readonly TimeSpan FanOutDrainTimeout = TimeSpan.FromSeconds(2);

    private readonly IngestChannel _ingest;
    private readonly InstrumentRegistry _instruments;
    private readonly PriceCache _cache;
    private readonly ChannelWriter<PriceFrame> _output;
    private readonly PipelineMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly FrameEncoder _encoder;
    private readonly long _intervalTicks;
    private readonly State[] _state;
    private readonly ITickObserver[] _observers;
    private readonly PriorityQueue<int, long> _due;
    private readonly ILogger _logger;
    // Null: every frame is its own object (tests that keep emitted frames, the comparison benchmarks).
    private readonly PriceFramePool? _pool;
    private readonly FanOutStage? _fanOut;
    private long _tickets;
    // Fired FanOutDrainTimeout after the stop began; only a write waiting for room in fan-out observes it. Not
    // disposed: it owns no timer, and the deadline timer may still fire after the stage is gone.
    private readonly CancellationTokenSource _fanOutDeadline = new();
    private ITimer? _timer;
    private long _timerArmedFor = long.MaxValue;
    private bool _fanOutGivenUp;
    // Fan-out ended (its channel closed under the stop): frames still in its channel will never be taken.
    private bool _fanOutClosed;
    private long _notFannedOut;

    public ThrottleStage(
        IngestChannel ingest,
        InstrumentRegistry instruments,
        PriceCache cache,
        FanOutStage fanOut,
        PipelineMetrics metrics,
        IOptions<ThrottleOptions> options,
        IOptions<FeedOptions> feed,
        TimeProvider time,
        ILogger<ThrottleStage> logger,
        IEnumerable<ITickObserver> observers)
        : this(ingest, instruments, cache, fanOut.Writer, metrics, options, time, feed.Value.MicrosecondTimestamps, logger, observers, pooled: true, fanOut)
    {
    }

    internal ThrottleStage(
        IngestChannel ingest,
        InstrumentRegistry instruments,
        PriceCache cache,
        ChannelWriter<PriceFrame> output,
        PipelineMetrics metrics,
        IOptions<ThrottleOptions> options,
        TimeProvider time,
        bool microseconds = false,
        ILogger? logger = null,
        IEnumerable<ITickObserver>? observers = null,
        bool pooled = false,
        FanOutStage? fanOut = null)
    {
        _pool = pooled ? new PriceFramePool(cache.Readers, instruments.Count, metrics) : null;
        if (pooled)
        {
            metrics.PoolReaders = cache.Readers;
        }

        _fanOut = fanOut;
        _observers = observers?.ToArray() ?? [];
        _ingest = ingest;
        _logger = logger ?? NullLogger.Instance;
        _instruments = instruments;
        _cache = cache;
        _output = output;
        _metrics = metrics;
        _time = time;
        _encoder = new FrameEncoder(microseconds);
        _intervalTicks = options.Value.MinIntervalMs * time.TimestampFrequency / 1000;
        _state = new State[instruments.Count];
        for (var i = 0; i < _state.Length; i++)
        {
            _state[i].LastEmit = long.MinValue;
        }

        ContinueFromCache();
        _due = new PriorityQueue<int, long>(Math.Min(instruments.Count, 4096));
    }

    /// <summary>
    /// Completes the ingest channel and waits, up to the host's stop timeout, while the loop reads it to the end
    /// and emits every pending update. Call only once every feed has stopped (the shutdown sequence orders it):
    /// a feed writing after this would fail. Idempotent.
    /// </summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _ingest.Writer.TryComplete();
        if (ExecuteTask is { IsCompleted: false } loop)
        {
            using var deadline = _time.CreateTimer(static s => ((CancellationTokenSource)s!).Cancel(), _fanOutDeadline, FanOutDrainTimeout, Timeout.InfiniteTimeSpan);
            await loop.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        // Cancels the loop only if the host's stop timeout cut the drain short; otherwise it has ended already.
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    // Awaits below resume on the stage's own thread (see DedicatedThread), so no ConfigureAwait(false).
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        DedicatedThread.Run("pricedaemon-throttle", () => RunAsync(stoppingToken));

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        // Again here: the host builds every hosted service before it starts the first, so the constructor
        // ran before the storage service warmed the cache. Nothing has been emitted yet at this point.
        ContinueFromCache();
        var reader = _ingest.Reader;
        using var timer = _time.CreateTimer(static s => ((ThrottleStage)s!).Wake(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _timer = timer;
        using var writes = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, _fanOutDeadline.Token);
        // The token is registered once (it completes the channel, which wakes the loop): waiting with a cancelable
        // token allocates a waiter each time the loop goes idle; without one the channel reuses its own.
        using var stop = stoppingToken.UnsafeRegister(static s => ((IngestChannel)s!).Writer.TryComplete(), _ingest);
        try
        {
            // Ends when StopAsync completes the channel and every tick in it has been read.
            while (await reader.WaitToReadAsync())
            {
                stoppingToken.ThrowIfCancellationRequested();
                var drained = 0;
                while (reader.TryRead(out var tick))
                {
                    if (tick.InstrumentId == WakeId)
                    {
                        // A window closed at this point of the tick stream: emit before applying later ticks.
                        await EmitDueAsync(writes.Token);
                    }
                    else if (OnTick(tick, _time.GetTimestamp()) is { } frame)
                    {
                        await WriteAsync(frame, writes.Token);
                    }

                    // Under sustained load the channel never empties; closed windows must still be emitted.
                    if (++drained % 256 == 0)
                    {
                        await EmitDueAsync(writes.Token);
                    }
                }

                await EmitDueAsync(writes.Token);
                ArmTimer();
            }

            stoppingToken.ThrowIfCancellationRequested();
            await EmitPendingAsync(writes.Token);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            // The only writer is done: fan-out publishes what it holds and ends, so the stop can tell when the
            // last prices have reached the sockets' queues.
            _output.TryComplete();
        }
    }

    /// <summary>
    /// Applies one tick. Returns the frame to emit now, or null when the tick was merged into a pending
    /// update. Public to the benchmarks: this is the per-tick cost of the stage.
    /// </summary>
    internal PriceFrame? OnTick(in Tick tick, long now)
    {
        if ((uint)tick.InstrumentId >= (uint)_state.Length || !double.IsFinite(tick.LastPrice) || tick.LastPrice <= 0)
        {
            return null; // feeds validate; this guards the arrays and the JSON against a buggy one
        }

        _metrics.TicksReceived++;
        foreach (var observer in _observers)
        {
            observer.Observe(tick);
        }

        ref var s = ref _state[tick.InstrumentId];
        s.Pending = tick;
        if (tick.PreviousClose > 0)
        {
            s.PreviousClose = tick.PreviousClose; // the feed's own close (Upstox cp) beats the stored one
        }

        if (s.Scheduled)
        {
            _metrics.TicksCoalesced++;
            return null;
        }

        if (s.LastEmit == long.MinValue || now - s.LastEmit >= _intervalTicks)
        {
            return Emit(tick.InstrumentId, ref s, now);
        }

        s.Scheduled = true;
        _due.Enqueue(tick.InstrumentId, s.LastEmit + _intervalTicks);
        // Armed now, not after the batch: every tick read after this one then sees the window's timer set,
        // whatever the clock does meanwhile (a test's fake clock can move between two reads).
        ArmTimer();
        return null;
    }

    /// <summary>Emits every pending update whose window has closed by <paramref name="now"/>.</summary>
    internal PriceFrame? TakeDue(long now)
    {
        if (_due.TryPeek(out var id, out var at) && at <= now)
        {
            _due.Dequeue();
            ref var s = ref _state[id];
            s.Scheduled = false;
            return Emit(id, ref s, now);
        }

        return null;
    }

    private async ValueTask EmitDueAsync(CancellationToken ct)
    {
        var now = _time.GetTimestamp();
        while (TakeDue(now) is { } frame)
        {
            await WriteAsync(frame, ct);
        }
    }

    /// <summary>
    /// At stop, after the last tick: every pending update goes out now, its window closed or not, because no
    /// later tick or timer will emit it. All of them reach the cache before any waits for fan-out.
    /// </summary>
    private async ValueTask EmitPendingAsync(CancellationToken ct)
    {
        var now = _time.GetTimestamp();
        var frames = new List<PriceFrame>(_due.Count);
        while (_due.TryDequeue(out var id, out _))
        {
            ref var s = ref _state[id];
            s.Scheduled = false;
            frames.Add(Emit(id, ref s, now));
        }

        foreach (var frame in frames)
        {
            await WriteAsync(frame, ct);
        }

        if (_fanOutGivenUp)
        {
            LogNotFannedOut(_notFannedOut, FanOutDrainTimeout.TotalSeconds);
        }
    }

    /// <summary>Frames the pool has made since start; flat in steady state.</summary>
    internal long PooledFrames => _pool?.Created ?? 0;

    private PriceFrame Emit(int id, ref State s, long now)
    {
        s.LastEmit = now;
        s.Seq++;
        PriceFrame frame;
        if (_pool is null)
        {
            frame = _encoder.Encode(_instruments[id], s.Pending, s.Seq, s.PreviousClose);
        }
        else
        {
            // Without a fan-out stage nothing reads the output channel (the benchmarks): no frame waits there. Once
            // fan-out has ended (its channel closed at stop) nothing will ever be taken again: no frame waits either.
            frame = _pool.Rent(_fanOut is null || _fanOutClosed ? long.MaxValue : _fanOut.FannedOut);
            _encoder.EncodeInto(frame, _instruments[id], s.Pending, s.Seq, s.PreviousClose);
        }

        if (_cache.Set(frame) is { } replaced && _pool is not null)
        {
            _pool.Retire(replaced);
            if (_pool.Growing)
            {
                _pool.Reported();
                LogPoolGrowing(_pool.Retired, _pool.Created, _cache.Readers.OldestReaderAge());
            }
        }

        _metrics.UpdatesEmitted++;
        return frame;
    }

    /// <summary>
    /// Each instrument's seq goes on from its cached (restored) frame, so it only grows within an epoch, and
    /// its previous close is the stored one, so change_percent means the same across restarts.
    /// </summary>
    private void ContinueFromCache()
    {
        for (var i = 0; i < _state.Length; i++)
        {
            var cached = _cache.Get(i);
            _state[i].Seq = cached?.Seq ?? 0;
            _state[i].PreviousClose = cached?.PreviousClose ?? _instruments[i].ReferencePrice;
        }
    }

    /// <summary>
    /// Writes are awaited one at a time, so the ticket given here is the frame's place in fan-out's channel (the pool
    /// reuses the frame once fan-out has taken that many). A frame is always written before a later emission of its
    /// instrument can retire it.
    /// </summary>
    private ValueTask WriteAsync(PriceFrame frame, CancellationToken ct)
    {
        frame.Ticket = ++_tickets;
        return _output.TryWrite(frame) ? ValueTask.CompletedTask : WaitToWriteAsync(frame, ct);
    }

    private async ValueTask WaitToWriteAsync(PriceFrame frame, CancellationToken ct)
    {
        if (_fanOutGivenUp)
        {
            NotFannedOut(frame);
            return;
        }

        try
        {
            await _output.WriteAsync(frame, ct);
        }
        catch (OperationCanceledException) when (_fanOutDeadline.IsCancellationRequested)
        {
            // FanOutDrainTimeout into the stop and fan-out is still full. The frame is in the cache already.
            _fanOutGivenUp = true;
            NotFannedOut(frame);
        }
        catch (ChannelClosedException)
        {
            // Fan-out's host stop cut it short (it completes its channel when its token fires).
            _fanOutGivenUp = true;
            _fanOutClosed = true;
            NotFannedOut(frame);
        }
    }

    /// <summary>
    /// The frame never reaches fan-out's channel: its ticket would never be passed and, at the head of the pool's
    /// retired queue, would keep every frame behind it from reuse for the rest of the stop; and a later frame that
    /// still fits in the channel would get a ticket one past its place. It was the last ticket given: take it back.
    /// </summary>
    private void NotFannedOut(PriceFrame frame)
    {
        frame.Ticket = 0;
        _tickets--;
        _notFannedOut++;
    }

    private void ArmTimer()
    {
        if (_timer is null || !_due.TryPeek(out _, out var at) || at == _timerArmedFor)
        {
            return;
        }

        _timerArmedFor = at;
        var delay = _time.GetElapsedTime(_time.GetTimestamp(), at);
        _timer!.Change(delay < TimeSpan.Zero ? TimeSpan.Zero : delay, Timeout.InfiniteTimeSpan);
    }

    private void Wake()
    {
        _timerArmedFor = long.MaxValue;
        // If the channel is full the loop is busy and checks closed windows on its own.
        _ingest.Writer.TryWrite(new Tick(WakeId, 0, 0, 0, 0, default));
    }

    [LoggerMessage(EventId = 211, Level = LogLevel.Warning, Message = "Price frame pool growing: {Retired} replaced frames wait for reuse ({Created} made since start), the oldest reader entered its scope {Age} retirements ago; a reader kept a read scope open or fan-out is stuck")]
    private partial void LogPoolGrowing(int retired, long created, long age);

    [LoggerMessage(EventId = 210, Level = LogLevel.Warning, Message = "Stopping: fan-out was still full {Seconds} s into the stop; {Count} last updates went to the cache and storage only, not to sockets")]
    private partial void LogNotFannedOut(long count, double seconds);

    private struct State
    {
        public Tick Pending;
        public long LastEmit;
        public long Seq;
        public double PreviousClose;
        public bool Scheduled;
    }
}
