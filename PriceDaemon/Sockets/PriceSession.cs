using System.Net.WebSockets;
using PriceDaemon.Pipeline;
using PriceDaemon.Security;
using PriceDaemon.Sockets.Send;

namespace PriceDaemon.Sockets;

/// <summary>
/// One WebSocket client: a receive loop that handles subscribe/unsubscribe, over a <see cref="SocketSender"/>
/// that writes everything the client gets. Whichever side ends first closes the other, with a timeout.
/// </summary>
/// <remarks>
/// Ownership: the receive loop owns the subscriptions (<see cref="_subscriptions"/>, the bad-message window)
/// from its first read to the end of its <c>finally</c>, which hands every subscription back (index, user
/// limits, upstream interest). Nothing else touches them, not even the session's end when the loop
/// outlives its close timeout: the loop then gives them back whenever its pending read finally ends.
/// </remarks>
internal sealed partial class PriceSession : ISendEnd
{
    // Client messages are small; a message borrows a pooled buffer of this size and grows it up to the limit.
    private const int InitialReceiveBytes = 512;

    private readonly IClientSocket _socket;
    private readonly SocketSender _sender;
    private readonly SessionServices _services;
    private readonly ILogger _logger;
    private readonly ClientIdentity _client;

    // Owned by the receive loop (see remarks).
    private readonly PriceSubscriptions _subscriptions = new();
    private Dictionary<int, Subscription>? _topics; // by topic id; made on the first topic subscribe
    private Dictionary<int, Subscription>? _depth; // depth channel, by instrument id; made on the first depth subscribe
    private Dictionary<int, Subscription>? _book; // book channel, by instrument id
    private readonly List<string> _keys = [];
    private CandleRequest _candleRequest; // the candles message's interval and history, beside _keys
    private long _badWindowStart; // the current one-minute window of bad messages
    private int _badMessages;
    private bool _unreadableLogged; // the parser threw once already: logged once per connection
    private long _ackWindowStart; // the current one-minute window of acks
    private int _acks;

    private int _subscriptionCount; // _subscriptions.Count, for other threads
    private long _lastMessageAt; // timestamp of the last client message (or of the connect)

    // The session's end (PriceSession.End.cs): which sides have ended, the run's task, what it ends into, and the
    // timers of its close (both only while closing) and of the token's expiry.
    private int _ends;
    private TaskCompletionSource? _run;
    private SessionOwner? _owner;
    private ITimer? _closeTimer;
    private bool _closeAborted; // close timer only: the first timeout aborted the connection
    private ITimer? _expiry;
    private Exception? _fault; // what ended the receive loop that is no socket fault: the run faults with it

    public PriceSession(IClientSocket socket, SocketSender sender, SessionServices services, ClientIdentity client)
    {
        _socket = socket;
        _sender = sender;
        _services = services;
        _logger = services.Logger;
        _client = client;
        _lastMessageAt = services.Time.GetTimestamp();
        sender.Attach(socket);
        sender.Attach((ISendEnd)this);
    }

    public long Id => _sender.Id;

    public string Remote => _sender.Remote;

    /// <summary>The signed-in user (the token's <c>sub</c>); null for anonymous clients.</summary>
    public string? Subject => _client.Subject;

    public int SubscriptionCount => Volatile.Read(ref _subscriptionCount);

    /// <summary>Prices and control frames waiting for the next send pass: for tests and diagnostics.</summary>
    public int QueuedCount => _sender.QueuedCount;

    /// <summary>A close was requested or the connection was aborted; the session is on its way out.</summary>
    public bool IsClosing => _sender.IsClosing;

    /// <summary>Runs the session until the socket closes. Never throws for socket faults.</summary>
    public Task RunAsync() => RunAsync(null);

    /// <summary>
    /// Starts the session; the task completes when the socket has closed and then, with an <paramref name="owner"/>,
    /// the session has ended there (<see cref="PriceSocketEndpoint.SessionEnded"/>). Never faults for socket faults.
    /// </summary>
    /// <param name="owner">
    /// The registry and the gate together, or neither: the end then has both, so it cannot throw a null reference
    /// that would hide the exception that ended the session. A struct: nothing more per socket.
    /// </param>
    /// <remarks>
    /// Not an async method: no state machine waits for either side while the socket is open (~0.35 KiB of an idle one
    /// with the wait for both). The receive loop and the sender each say when they end (<see cref="SideEnded"/>); the
    /// first to end gives the other the close timeout (PriceSession.End.cs).
    /// </remarks>
    public Task RunAsync(SessionOwner? owner)
    {
        _owner = owner;
        var run = _run = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            var (state, message) = _services.FeedStatus.Current;
            EnqueueControl(ControlFrames.Status(state, message, _services.Cache.Epoch));
            // The registry indexed this session before it runs, so a notification published from now on is queued
            // here live; one published in between is both live and replayed, which its id lets the client see.
            _services.Announcements?.SendActive(EnqueueControl);

            if (_client.Subject is { } subject && _services.Inbox is { } inbox)
            {
                foreach (var frame in inbox.PendingFrames(subject))
                {
                    EnqueueControl(frame);
                }
            }

            _expiry = StartExpiryTimer();
        }
        catch (Exception ex)
        {
            // Nothing was read yet, so nothing is held: the session ends here, with the error.
            _fault = ex;
            Abort();
            Finish();
            return run.Task;
        }

        _ = ReceiveLoopAsync();
        return run.Task;
    }

    /// <summary>
    /// Asks the send side to write a close frame once the control frames queued before it are out (and, with
    /// <paramref name="pricesFirst"/>, the prices already marked). Safe from any thread, idempotent: the first
    /// reason wins.
    /// </summary>
    public void BeginClose(WebSocketCloseStatus status, string reason, bool pricesFirst = false) => _sender.BeginClose(status, reason, pricesFirst);

    /// <summary>Cuts the connection without a handshake: for peers that stopped reading.</summary>
    public void Abort() => _sender.Abort();

    /// <summary>True when a socket write has been pending for longer than <paramref name="limit"/> timestamp ticks.</summary>
    public bool IsStalled(long now, long limit) => _sender.IsStalled(now, limit);

    public void EnqueueControl(byte[] frame) => _sender.EnqueueControl(frame);

    /// <summary>Sweeper: one look of the slow-consumer flow control (warn and downsample, recover, or close).</summary>
    public void CheckFlow(long now) => _sender.CheckFlow(now);

    /// <summary>Prices come at the slow-consumer interval: the socket stayed behind.</summary>
    public bool IsDownsampled => _sender.IsDownsampled;
}
