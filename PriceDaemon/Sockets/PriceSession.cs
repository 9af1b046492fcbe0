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

    // The send queue: subscriptions with a pending frame and queued control frames, as a lock-free
    // intrusive stack (newest first) that fan-out pushes onto with one CAS and a send pass takes whole with
    // one exchange. Every subscription is in it at most once (signalled only when its mailbox goes from
    // empty to full), and control frames are capped, so it is bounded by the subscriptions.
    private Subscription? _readyHead;
    private int _controlCount;

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
    }

    public long Id { get; }

    public string Remote { get; }

    public int SubscriptionCount => Volatile.Read(ref _subscriptionCount);

    private int _subscriptionCount;

    /// <summary>
    /// Items waiting for the next send pass, counted by walking the list: for tests and diagnostics, exact
    /// only while no pass runs. The walk stops at the bound a well-behaved list never exceeds.
    /// </summary>
    public int QueuedCount
    {
        get
        {
            var bound = _services.Limits.MaxSubscriptionsPerConnection + ControlQueueLimit;
            var count = 0;
            foreach (var start in new[] { Volatile.Read(ref _readyHead), _carry })
            {
                for (var item = start; item is not null && count <= bound; item = item.NextReady)
                {
                    count++;
                }
            }

            return count;
        }
    }

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

        PushReady(new Subscription(this, frame));
        ScheduleSend();
    }

    void ISubscriber.Signal(Subscription subscription)
    {
        PushReady(subscription);
        ScheduleSend();
    }

    void ISubscriber.Conflated() => Interlocked.Increment(ref _services.Metrics.FramesConflated);

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
