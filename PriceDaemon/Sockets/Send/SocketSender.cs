using System.Net;
using System.Net.WebSockets;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Sockets.Send;

/// <summary>
/// Everything that leaves one socket, on one path. There is no send loop per socket: fan-out marks a
/// subscription's slot ready, the session queues control frames (status, acks, errors), and either schedules
/// the sender once on a <see cref="SendPump"/> thread. A pass appends everything ready into one buffer and
/// writes it to the <see cref="IFrameSink"/>; the protocol's own frames (pings, pongs, the close) reach the
/// same sink through <see cref="WriteOwnFrameAsync(ReadOnlyMemory{byte})"/> (a <see cref="PipeClientSocket"/>'s directly, a WebSocket's
/// through <see cref="CreateStream"/>), so bytes of two frames never interleave and nothing writes
/// around the sender. A write the sink cannot finish at once (the peer is slow) completes on the thread
/// pool, and the sender is not scheduled again until it has.
/// </summary>
/// <remarks>
/// The schedule flag is the whole concurrency protocol: whoever publishes work (a mark, a control frame, a
/// close) then calls <see cref="ScheduleSend"/>, which queues a pass only on the 0 → 1 edge; the pass, when it
/// is done, releases the flag with a full fence and looks for work once more. One of the two always sees the
/// other, so no work is stranded and passes never overlap.
/// </remarks>
internal sealed partial class SocketSender : ISubscriber, ISendPass
{
    // A runaway producer of control frames (a client flooding subscribe messages the socket cannot take) is
    // closed rather than queued without bound.
    private const int ControlQueueLimit = 256;

    // A batch stops growing here so one busy socket cannot pin a large buffer; the rest goes in the next pass.
    private const int MaxBatchBytes = 64 * 1024;

    private readonly object _remote; // a string or an IPEndPoint (see the constructor)
    private readonly IFrameSink _sink;
    private readonly Action _abortConnection;
    private readonly SessionServices _services;
    private IClientSocket? _socket; // the client side of the socket; set once by Attach, before any pass

    // The queue. Prices: one mark per subscription slot with a newer frame than it last got, set by fan-out;
    // a slot is marked at most once until a pass takes it, so a socket that falls behind holds one frame per
    // instrument. Control frames: a lock-free stack (newest first) that a pass takes whole, capped at
    // ControlQueueLimit; a pass writes them before prices.
    private readonly ReadySlots _ready;
    private ControlFrame? _controlHead;
    private int _controlCount;

    // Subscriptions by slot: written by the session's receive loop before a subscription is indexed, read by
    // passes. Grows by copy; a pass that reads the array after taking a mark sees the subscription that made it.
    private Subscription?[] _slots = new Subscription?[4];
    private Stack<int>? _freeSlots; // receive loop only
    private int _slotsUsed; // receive loop only

    // 1 from the moment the sender is queued on a pump until its pass, and any write it started, is over.
    // Stays 1 once the send side has ended.
    private int _scheduled;
    private CloseInfo? _close; // set once; published with a CAS, so whoever sees it sees its reason
    private volatile bool _aborted;
    private bool _ended; // the pass in progress, or the write that ended the send side
    private long _writeStartedAt; // 0 while no write is pending
    private int _completed; // 1 once the close frame is out or the send side failed
    private TaskCompletionSource? _done; // made only when someone asks for Completion (see there)
    private ISendEnd? _end; // told once the send side has ended

    // Only the pass in progress touches these: control frames it took but did not get to (oldest first), the
    // word of ready marks the next pass starts at, and by slot what each subscription last got.
    private ControlFrame? _controlCarry;
    private int _nextWord;
    private SentState[] _sent = [];

    // Flow control (FlowControl.cs). _busyTicks: how long writes were pending in all, added by the pass as each
    // pending write ends, read by the sweeper with _writeStartedAt under _busyVersion. _flow: the sweeper's state machine; it sets
    // _downsampled, which a pass reads once. While downsampled a pass writes prices only once per interval
    // (_nextRoundAt, pass only); one that is too early leaves the marks and arms _roundTimer for the due time.
    private long _busyTicks;
    private int _busyVersion; // odd while the pass moves a finished write's time into _busyTicks
    private FlowControl _flow;
    private volatile bool _downsampled;
    private long _nextRoundAt;
    private bool _pricesDeferred;
    private ITimer? _roundTimer;
    private int _roundFired; // set by the round timer, cleared by the pass that reads it (SocketSender.Flow.cs)
    private volatile bool _timing;

    // The bytes of one write. The pass appends to _buffer without a lock; the WebSocket's own frames written
    // while a pass is building (_batching) wait in _aside and go out at the end of the same write. _writers and
    // _writeTurn order writes to the sink (SocketSender.Pass.cs, EnterWrite).
    private int _writers;
    private SemaphoreSlim? _writeTurn;
    private readonly Lock _asideLock = new();
    private byte[]? _buffer;
    private int _count;
    private bool _batching; // opened by the pass alone, closed and read under _asideLock
    private byte[]? _aside; // under _asideLock
    private int _asideCount; // under _asideLock

    /// <param name="remote">
    /// The peer's address as logged: a string, or the connection's own <see cref="IPEndPoint"/> (Kestrel holds it anyway),
    /// formatted only when a line is logged rather than kept as a string per socket (~56 B of an idle one).
    /// </param>
    public SocketSender(long id, object remote, IFrameSink sink, Action abortConnection, SessionServices services)
    {
        Id = id;
        _remote = remote;
        _sink = sink;
        _abortConnection = abortConnection;
        _services = services;
        _ready = new ReadySlots(services.Limits.MaxSubscriptionsPerConnection);
        _flow = new FlowControl(services.Time.GetTimestamp());
        _heardAt = services.KeepAliveTime.GetTimestamp();
    }

    /// <summary>The connection's id: in log lines, and the key that picks its send thread.</summary>
    public long Id { get; }

    /// <summary>The peer's <c>address:port</c>, for log lines.</summary>
    public string Remote => _remote is IPEndPoint endPoint ? $"{endPoint.Address}:{endPoint.Port}" : _remote.ToString() ?? "";

    /// <summary>
    /// Completes when the close frame is out or the send side failed; never faults. Made on first use: a session is told
    /// through <see cref="ISendEnd"/> instead, so an open socket holds no task for it (~90 B).
    /// </summary>
    public Task Completion
    {
        get
        {
            if (Volatile.Read(ref _completed) != 0)
            {
                return Task.CompletedTask;
            }

            var done = Volatile.Read(ref _done);
            if (done is null)
            {
                var made = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                done = Interlocked.CompareExchange(ref _done, made, null) ?? made;
            }

            // Published with a full fence before the look: Complete either sees it or is seen here.
            if (Volatile.Read(ref _completed) != 0)
            {
                done.TrySetResult();
            }

            return done.Task;
        }
    }

    /// <summary>A close was requested or the connection was aborted; the sender is on its way out.</summary>
    public bool IsClosing => Volatile.Read(ref _close) is not null;

    /// <summary>Prices and control frames waiting for the next pass: for tests and diagnostics.</summary>
    public int QueuedCount => _ready.Count() + Volatile.Read(ref _controlCount);

    /// <summary>No write holds or waits for the write order (tests: a pass that waited for its turn has finished).</summary>
    internal bool WriteOrderFree => Volatile.Read(ref _writers) == 0;

    /// <summary>
    /// Price frames carry <c>data.received_at</c> (set by a subscribe with <c>"timing"</c>): a variant each frame builds
    /// once, on first need, so sockets that do not ask get the same single serialization as ever.
    /// </summary>
    public bool Timing
    {
        get => _timing;
        set => _timing = value;
    }

    /// <summary>The socket stayed behind and gets prices at <c>Limits:SlowConsumerIntervalMs</c> until it keeps up.</summary>
    public bool IsDownsampled => _downsampled;

    /// <summary>The client side of the socket (a WebSocket built over <see cref="CreateStream"/>, or a <see cref="PipeClientSocket"/>); it writes the close frame.</summary>
    public void Attach(IClientSocket socket) => _socket = socket;

    /// <summary>Who is told when the send side has ended (the session); set once, before any pass.</summary>
    public void Attach(ISendEnd end) => _end = end;

    /// <summary>
    /// The stream to build the WebSocket on: reads come from <paramref name="input"/>, writes (the WebSocket's
    /// own frames) join this sender's path. <paramref name="onDispose"/> ends whatever the transport has pending
    /// when the WebSocket aborts.
    /// </summary>
    public Stream CreateStream(Stream input, Action onDispose) => new SenderStream(input, this, onDispose);

    /// <summary>Receive loop: a price subscription in a free slot, published for passes before it is indexed.</summary>
    public Subscription Add(int instrumentId) => Add(instrumentId, null);

    /// <summary>Receive loop: a subscription to <paramref name="key"/> of <paramref name="source"/> (null: prices) in a free slot.</summary>
    public Subscription Add(int key, IFrameSource? source)
    {
        if (_freeSlots is null || !_freeSlots.TryPop(out var slot))
        {
            slot = _slotsUsed++;
        }

        var slots = _slots;
        if (slot >= slots.Length)
        {
            Array.Resize(ref slots, slots.Length * 2);
            Volatile.Write(ref _slots, slots);
        }

        var subscription = new Subscription(this, key, slot, source);
        Volatile.Write(ref slots[slot], subscription);
        return subscription;
    }

    /// <summary>
    /// Receive loop, after the subscription left the index and was marked removed. A late mark on the slot
    /// (fan-out on an older copy of the index) finds the slot empty, or its next owner's frames, which the
    /// sequence check keeps from being written twice.
    /// </summary>
    public void Remove(Subscription subscription)
    {
        Volatile.Write(ref _slots[subscription.Slot], null);
        (_freeSlots ??= new Stack<int>()).Push(subscription.Slot);
    }

    void ISubscriber.Offered(Subscription subscription, StreamFrame frame)
    {
        if (_ready.Mark(subscription.Slot))
        {
            ScheduleSend();
        }
        else
        {
            // The slot was marked already: the frame it stood for is replaced before it was written.
            Interlocked.Increment(ref _services.Metrics.FramesConflated);
        }
    }

    /// <summary>Queues a control frame; safe from any thread. Past the cap the connection is cut.</summary>
    public void EnqueueControl(byte[] frame)
    {
        if (Interlocked.Increment(ref _controlCount) > ControlQueueLimit)
        {
            Interlocked.Decrement(ref _controlCount);
            if (!IsClosing)
            {
                Interlocked.Increment(ref _services.Metrics.SlowConsumersClosed);
                SocketLog.SlowConsumer(_services.Logger, Id, Remote, "send queue overflow");
                Abort();
            }

            return;
        }

        PushControl(new ControlFrame(frame));
        ScheduleSend();
    }

    /// <summary>
    /// Writes a close frame once the control frames queued before it are out. Prices stop, unless
    /// <paramref name="pricesFirst"/>: then the prices already marked go out before the close too (a server
    /// stop, whose last prices were fanned out just before it; a peer that cannot take them is cut after the
    /// close timeout as usual). Safe from any thread, idempotent: the first reason wins.
    /// </summary>
    public void BeginClose(WebSocketCloseStatus status, string reason, bool pricesFirst = false)
    {
        if (Interlocked.CompareExchange(ref _close, new CloseInfo(status, reason, pricesFirst), null) is null)
        {
            ScheduleSend();
        }
    }

    /// <summary>Cuts the connection without a handshake: for peers that stopped reading.</summary>
    public void Abort()
    {
        _aborted = true; // a close that wanted its prices first no longer does
        BeginClose(WebSocketCloseStatus.PolicyViolation, "aborted");
        _socket?.Abort();
        _abortConnection();
    }

    /// <summary>True when a write has been pending for longer than <paramref name="limit"/> timestamp ticks.</summary>
    public bool IsStalled(long now, long limit)
    {
        var started = Volatile.Read(ref _writeStartedAt);
        return started != 0 && now - started > limit;
    }

    /// <summary>
    /// Callers publish their work first with a full fence (a mark, a push, a CAS), so the plain read of the
    /// flag cannot miss a pass's release in <see cref="EndPass"/>: one of the two always sees the other.
    /// </summary>
    private void ScheduleSend()
    {
        if (Volatile.Read(ref _scheduled) == 0 && Interlocked.CompareExchange(ref _scheduled, 1, 0) == 0)
        {
            _services.SendPump.Schedule(this, Id);
        }
    }

    /// <summary>Runs on a pump thread; never throws and never blocks.</summary>
    void ISendPass.RunSendPass()
    {
        ValueTask pass;
        try
        {
            pass = WriteReady();
        }
        catch (Exception ex)
        {
            pass = ValueTask.FromException(ex);
        }

        if (pass.IsCompletedSuccessfully)
        {
            EndPass();
        }
        else
        {
            _ = FinishPassAsync(pass);
        }
    }

    private async Task FinishPassAsync(ValueTask pass)
    {
        try
        {
            await pass.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Fail(ex);
            return;
        }

        EndPass();
    }

    private void EndPass()
    {
        if (_writeStartedAt is var started and not 0)
        {
            // Read before the seqlock opens: a clock may run code in its reads (a FakeTimeProvider runs due timers there,
            // the sweep among them), and a look that ran inside the open seqlock would wait for it forever.
            var ended = _services.Time.GetTimestamp();
            // A seqlock: the sweeper reads the pair only between two equal, even versions, so a write that ends
            // while it reads is not missed, nor counted twice beyond the instant since the read above. The odd bump is a
            // full fence.
            Interlocked.Increment(ref _busyVersion);
            Volatile.Write(ref _writeStartedAt, 0);
            Volatile.Write(ref _busyTicks, _busyTicks + Math.Max(0, ended - started));
            Volatile.Write(ref _busyVersion, _busyVersion + 1);
        }

        if (_ended)
        {
            _roundTimer?.Dispose();
            return;
        }

        if (Volatile.Read(ref _close) is { } close && Volatile.Read(ref _controlCount) == 0 && _controlCarry is null
            && !(close.PricesFirst && !_aborted && _ready.Any()))
        {
            // Closing, and every control frame queued before the close (the error that explains it) is out;
            // prices still queued are dropped, unless the close wanted them first. The close frame is the
            // last thing sent.
            _ended = true;
            _roundTimer?.Dispose();
            _ = CloseOutputAsync();
            return;
        }

        // Release (a full fence), then look again: work queued after this pass took it found the flag still
        // set and did not queue the sender, a batch may have stopped at MaxBatchBytes, and a close may have
        // been requested since the check above.
        Interlocked.Exchange(ref _scheduled, 0);
        if (_controlCarry is not null || Volatile.Read(ref _controlHead) is not null || PricesWaiting() || IsClosing)
        {
            ScheduleSend();
        }
    }

    private async Task CloseOutputAsync()
    {
        try
        {
            if (_socket is { CanSendClose: true } socket)
            {
                Volatile.Write(ref _writeStartedAt, Math.Max(1, _services.Time.GetTimestamp()));
                await socket.CloseOutputAsync(_close!.Status, _close.Reason).ConfigureAwait(false);
            }

            Complete();
        }
        catch (Exception ex)
        {
            Fail(ex);
        }
        finally
        {
            Volatile.Write(ref _writeStartedAt, 0);
        }
    }

    private void Fail(Exception ex)
    {
        _ended = true;
        _roundTimer?.Dispose();
        Volatile.Write(ref _writeStartedAt, 0);
        try
        {
            Report(ex);
            Abort();
        }
        catch (ObjectDisposedException)
        {
            // The connection is already gone: the session may be over (its RunAsync timed out).
        }
        finally
        {
            // Last, so whoever awaits Completion sees the failure counted and the connection cut.
            Complete();
        }
    }

    /// <summary>The send side has ended: once, whichever of the close and a failure came first.</summary>
    private void Complete()
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0)
        {
            return;
        }

        Volatile.Read(ref _done)?.TrySetResult();
        _end?.SendEnded();
    }

    private void Report(Exception ex)
    {
        if (ex is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            Interlocked.Increment(ref _services.Metrics.SendErrors);
            SocketLog.SocketError(_services.Logger, Id, Remote, "send", ex.Message);
        }
        else
        {
            SocketLog.SendFailed(_services.Logger, Id, Remote, ex);
        }
    }

    private sealed record CloseInfo(WebSocketCloseStatus Status, string Reason, bool PricesFirst);

    /// <summary>A queued control frame: a node of the control stack.</summary>
    private sealed class ControlFrame(byte[] utf8)
    {
        public byte[] Utf8 { get; } = utf8;

        public ControlFrame? Next { get; set; }
    }

    /// <summary>The last sequence written for the subscription in a slot.</summary>
    private record struct SentState(Subscription? Subscription, long Seq);
}
