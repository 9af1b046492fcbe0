using System.Net.WebSockets;
using Microsoft.AspNetCore.Http.Features;
using PriceDaemon.Security;
using PriceDaemon.Sockets.Send;

namespace PriceDaemon.Sockets;

/// <summary><c>/api/ws/prices</c>: accepts the upgrade and runs one <see cref="PriceSession"/> for the life of the socket.</summary>
internal static partial class PriceSocketEndpoint
{
    public const string Path = "/api/ws/prices";

    /// <summary>
    /// Builds this path's WebSockets over a <see cref="SocketSender"/>: whatever way Kestrel upgrades the
    /// request (an HTTP/1.1 upgrade, HTTP/2's extended CONNECT), the socket's stream is the sender's, so every
    /// byte it gets goes out on the sender's one path. Must run before <c>UseWebSockets</c>.
    /// </summary>
    public static IApplicationBuilder UseSocketSenders(this IApplicationBuilder app) => app.Use(static (context, next) =>
    {
        // The same requests the endpoint's route takes: any letter case, a trailing slash.
        if (context.Request.Path.StartsWithSegments(Path, StringComparison.OrdinalIgnoreCase, out var rest) && rest.Value is null or "" or "/")
        {
            var services = context.RequestServices.GetRequiredService<SessionServices>();
            var registry = context.RequestServices.GetRequiredService<SessionRegistry>();
            if (context.Features.Get<IHttpUpgradeFeature>() is { IsUpgradableRequest: true } upgrade)
            {
                context.Features.Set<IHttpUpgradeFeature>(new SenderUpgradeFeature(upgrade, context, registry, services));
            }
            else if (context.Features.Get<IHttpExtendedConnectFeature>() is { IsExtendedConnect: true } connect)
            {
                context.Features.Set<IHttpExtendedConnectFeature>(new SenderConnectFeature(connect, context, registry, services));
            }
        }

        return next(context);
    });

    public static async Task HandleAsync(HttpContext context, SessionRegistry registry, SessionServices services, ConnectionGate gate)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsJsonAsync(
                new Http.ErrorBody("websocket_required", $"{Path} speaks WebSocket; connect with ws:// (e.g. wscat -c ws://host:port{Path})"),
                Http.DaemonJsonContext.Relaxed.ErrorBody).ConfigureAwait(false);
            return;
        }

        if (registry.IsStopping)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return;
        }

        // Origin, token and connection limits are all answered with an HTTP status before the upgrade.
        var admission = await gate.AdmitAsync(context).ConfigureAwait(false);
        if (admission.Client is not { } client)
        {
            context.Response.StatusCode = admission.StatusCode;
            await context.Response.WriteAsJsonAsync(new Http.ErrorBody(admission.Code, admission.Message), Http.DaemonJsonContext.Relaxed.ErrorBody).ConfigureAwait(false);
            return;
        }

        WebSocket? socket = null;
        SocketSender sender;
        try
        {
            socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
            {
                SubProtocol = client.Subprotocol,
                // Pings come from the session sweep (SocketSender.KeepAlive.cs), not from a timer per socket.
                KeepAliveInterval = TimeSpan.Zero,
            }).ConfigureAwait(false);
            sender = (context.Features.Get<IHttpUpgradeFeature>() as SenderUpgradeFeature)?.Sender
                ?? (context.Features.Get<IHttpExtendedConnectFeature>() as SenderConnectFeature)?.Sender
                ?? throw new InvalidOperationException($"{nameof(UseSocketSenders)} did not wrap the upgrade of {context.Request.Path}");
        }
        catch
        {
            socket?.Dispose();
            gate.Release(client);
            throw;
        }

        Interlocked.Increment(ref services.Metrics.HandshakesEndpoint);
        await RunSessionAsync(new WebSocketClientSocket(socket), sender, registry, services, gate, client).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs an accepted socket's session to its end and gives back its slots; both handshake paths end here. Not an
    /// async method: the session's own run does the ending (<see cref="SessionEnded"/>), so no state machine of this
    /// method lives as long as the socket (~0.2 KiB of an idle one).
    /// </summary>
    public static Task RunSessionAsync(
        IClientSocket socket, SocketSender sender, SessionRegistry registry, SessionServices services, ConnectionGate gate, ClientIdentity client)
    {
        PriceSession? session = null;
        try
        {
            session = new PriceSession(socket, sender, services, client);
            // No log scope per socket: its objects (~0.2 KiB) would live as long as the socket, and every line logged for
            // a socket names its connection and address in its own properties already.
            registry.Add(session);
        }
        catch
        {
            // The session never ran, so its end never comes: give back here what it would have (the gate's slots, the
            // socket and the connection under it), or each such failure keeps a slot and a socket for good.
            if (session is not null)
            {
                registry.Remove(session);
            }

            gate.Release(client);
            socket.Dispose();
            throw;
        }

        LogConnected(services.EndpointLogger, session.Id, session.Remote);
        return session.RunAsync(new SessionOwner(registry, gate));
    }

    /// <summary>The end of a session run by <see cref="RunSessionAsync"/>: out of the registry, its slots back, the socket disposed.</summary>
    internal static void SessionEnded(PriceSession session, IClientSocket socket, SessionRegistry registry, SessionServices services, ConnectionGate gate, ClientIdentity client)
    {
        registry.Remove(session);
        gate.Release(client);
        socket.Dispose();
        LogDisconnected(services.EndpointLogger, session.Id, session.Remote, socket.CloseStatus ?? WebSocketCloseStatus.Empty);
    }

    [LoggerMessage(EventId = 320, Level = LogLevel.Information, Message = "WebSocket connected: connection {ConnectionId} from {RemoteAddress}")]
    private static partial void LogConnected(ILogger logger, long connectionId, string remoteAddress);

    [LoggerMessage(EventId = 321, Level = LogLevel.Information, Message = "WebSocket disconnected: connection {ConnectionId} from {RemoteAddress} ({CloseStatus})")]
    private static partial void LogDisconnected(ILogger logger, long connectionId, string remoteAddress, WebSocketCloseStatus closeStatus);

    /// <summary>A sender for an upgraded request: its stream is Kestrel's, for the pipe under the request.</summary>
    private static SocketSender CreateSender(Stream upgraded, HttpContext context, SessionRegistry registry, SessionServices services)
    {
        var remote = $"{context.Connection.RemoteIpAddress}:{context.Connection.RemotePort}";
        return new SocketSender(registry.NextId(), remote, new PipeFrameSink(upgraded), context.Abort, services);
    }

    /// <summary>An HTTP/1.1 upgrade whose stream is a <see cref="SocketSender"/>'s.</summary>
    private sealed class SenderUpgradeFeature(IHttpUpgradeFeature inner, HttpContext context, SessionRegistry registry, SessionServices services) : IHttpUpgradeFeature
    {
        public bool IsUpgradableRequest => inner.IsUpgradableRequest;

        public SocketSender? Sender { get; private set; }

        public async Task<Stream> UpgradeAsync()
        {
            var upgraded = await inner.UpgradeAsync().ConfigureAwait(false);
            Sender = CreateSender(upgraded, context, registry, services);
            return Sender.CreateStream(upgraded, upgraded.Dispose);
        }
    }

    /// <summary>HTTP/2's extended CONNECT (RFC 8441) whose stream is a <see cref="SocketSender"/>'s.</summary>
    private sealed class SenderConnectFeature(IHttpExtendedConnectFeature inner, HttpContext context, SessionRegistry registry, SessionServices services) : IHttpExtendedConnectFeature
    {
        public bool IsExtendedConnect => inner.IsExtendedConnect;

        public string? Protocol => inner.Protocol;

        public SocketSender? Sender { get; private set; }

        public async ValueTask<Stream> AcceptAsync()
        {
            var accepted = await inner.AcceptAsync().ConfigureAwait(false);
            Sender = CreateSender(accepted, context, registry, services);
            return Sender.CreateStream(accepted, accepted.Dispose);
        }
    }
}
