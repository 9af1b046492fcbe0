using System.Net.WebSockets;
using PriceDaemon.Pipeline;
using PriceDaemon.Security;

namespace PriceDaemon.Sockets;

/// <summary>
/// One WebSocket client: a receive loop that handles subscribe/unsubscribe, and a send side whose passes
/// (on a <see cref="SendPump"/> thread) drain this session's queue into the socket. Whichever side ends
/// first closes the other, with a timeout.
/// </summary>
internal sealed partial class PriceSession : ISubscriber
{
    private const int ControlQueueLimit = 256;

    private readonly WebSocket _socket;
    private readonly BatchingStream? _stream;
    private readonly Action _abortConnection;
    private readonly SessionServices _services;
    private readonly ILogger _logger;

    // The send queue. Prices: the slots of subscriptions with a newer frame, marked by fan-out; a slot is
    // marked at most once until a pass takes it, so a socket that falls behind holds one frame per instrument.
    // Control frames (status, acks, errors): a lock-free intrusive stack (newest first) that a pass takes
    // whole, capped at ControlQueueLimit. A pass writes control frames first, then prices.
    private readonly ReadySlots _ready;
    private ControlFrame? _controlHead;
    private int _controlCount;

    // Subscriptions by slot: written by the receive loop before a subscription is indexed, read by passes.
    // Grows by copy; a pass that reads the array after taking a mark sees the subscription that made it.
    private Subscription?[] _slots = new Subscription?[4];
    private Stack<int>? _freeSlots;
    private int _slotsUsed;

    // Owned by the receive loop.
    private readonly Dictionary<int, Subscription> _subscriptions = [];

    private readonly CancellationTokenSource _receiveStop = new();
    private CloseInfo? _close; // set once; published with a CAS, so whoever sees it sees its reason
    private long _writeStartedAt; // 0 while not inside a socket write

    public PriceSession(long id, WebSocket socket, BatchingStream? stream, Action abortConnection, string remote, SessionServices services, ClientIdentity client)
    {
        Id = id;
        Remote = remote;
        _socket = socket;
        _stream = stream;
        _abortConnection = abortConnection;
        _services = services;
        _logger = services.Logger;
        _client = client;
        _lastMessageAt = services.Time.GetTimestamp();
        _ready = new ReadySlots(services.Limits.MaxSubscriptionsPerConnection);
    }

    public long Id { get; }

    public string Remote { get; }

    public int SubscriptionCount => Volatile.Read(ref _subscriptionCount);

    private int _subscriptionCount;

    /// <summary>Prices and control frames waiting for the next send pass: for tests and diagnostics.</summary>
    public int QueuedCount => _ready.Count() + Volatile.Read(ref _controlCount);

    /// <summary>Runs the session until the socket closes. Never throws for socket faults.</summary>
    public async Task RunAsync()
    {
        var (state, message) = _services.FeedStatus.Current;
        EnqueueControl(ControlFrames.Status(state, message, _services.Cache.Epoch));

        using var expiry = StartExpiryTimer();
        var send = SendCompletion;
        var receive = ReceiveLoopAsync();
        await Task.WhenAny(send, receive).ConfigureAwait(false);

        // The other loop gets the close timeout to finish the handshake; then the connection is cut.
        var timeout = TimeSpan.FromSeconds(_services.Limits.CloseTimeoutSeconds);
        try
        {
            await Task.WhenAll(send, receive).WaitAsync(timeout, _services.Time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Abort();
            try
            {
                await Task.WhenAll(send, receive).WaitAsync(timeout, _services.Time).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // An aborted connection always ends its pending I/O; if it ever does not, the session is
                // still released rather than holding the host's shutdown.
                LogSocketError(Id, Remote, "close", "loops did not end after abort");
            }
        }
        finally
        {
            foreach (var subscription in _subscriptions.Values)
            {
                _services.Index.Remove(subscription);
                subscription.MarkRemoved();
            }

            _client.User.RemoveSubscriptions(_subscriptions.Count);
            _subscriptions.Clear();
            _receiveStop.Dispose();
        }
    }

    /// <summary>
    /// Asks the send side to write a close frame once the control frames queued before it are out, and stops
    /// sending prices. Safe from any thread, idempotent: the first reason wins.
    /// </summary>
    public void BeginClose(WebSocketCloseStatus status, string reason)
    {
        if (Interlocked.CompareExchange(ref _close, new CloseInfo(status, reason), null) is not null)
        {
            return;
        }

        ScheduleSend();
    }

    /// <summary>Receive loop: a subscription in a free slot, published for send passes before it is indexed.</summary>
    private Subscription TakeSlot(int instrumentId)
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

        var subscription = new Subscription(this, instrumentId, slot);
        Volatile.Write(ref slots[slot], subscription);
        return subscription;
    }

    /// <summary>
    /// Receive loop, after the subscription left the index and was marked removed. A late mark on the slot
    /// (fan-out on an older copy of the index) finds the slot empty, or its next owner's frames, which the
    /// sequence check keeps from being written twice.
    /// </summary>
    private void FreeSlot(Subscription subscription)
    {
        Volatile.Write(ref _slots[subscription.Slot], null);
        (_freeSlots ??= new Stack<int>()).Push(subscription.Slot);
    }

    private sealed record CloseInfo(WebSocketCloseStatus Status, string Reason);

    /// <summary>Cuts the connection without a handshake: for peers that stopped reading.</summary>
    public void Abort()
    {
        BeginClose(WebSocketCloseStatus.PolicyViolation, "aborted");
        _socket.Abort();
        _abortConnection();
    }

    /// <summary>A close was requested or the connection was aborted; the session is on its way out.</summary>
    public bool IsClosing => Volatile.Read(ref _close) is not null;

    /// <summary>True when a socket write has been pending for longer than <paramref name="limit"/> timestamp ticks.</summary>
    public bool IsStalled(long now, long limit)
    {
        var started = Volatile.Read(ref _writeStartedAt);
        return started != 0 && now - started > limit;
    }

    public void EnqueueControl(byte[] frame)
    {
        if (Interlocked.Increment(ref _controlCount) > ControlQueueLimit)
        {
            Interlocked.Decrement(ref _controlCount);
            Overflow();
            return;
        }

        PushControl(new ControlFrame(frame));
        ScheduleSend();
    }

    void ISubscriber.Offered(Subscription subscription, PriceFrame frame)
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

    private void Overflow()
    {
        if (!IsClosing)
        {
            Interlocked.Increment(ref _services.Metrics.SlowConsumersClosed);
            LogSlowConsumer(Id, Remote, "send queue overflow");
            Abort();
        }
    }
}
