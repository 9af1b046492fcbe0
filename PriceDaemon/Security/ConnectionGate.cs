using System.Net;

namespace PriceDaemon.Security;

/// <summary>A client let in: who they are, and the slots they hold until <see cref="ConnectionGate.Release"/>.</summary>
internal sealed record ClientIdentity(ClientUser User, string? Subject, DateTimeOffset? ExpiresAt, string? Subprotocol, IPAddress? CountedAddress);

/// <summary>The answer to a handshake: an identity, or the HTTP status and stable error code to refuse it with.</summary>
internal readonly record struct Admission(ClientIdentity? Client, int StatusCode, string Code, string Message);

/// <summary>
/// Everything a price-socket handshake must pass before the upgrade, cheapest first: the Origin (403),
/// the token (401), then the connection limits (503 for the whole daemon, 429 for one user or address).
/// Refusing before the upgrade costs one HTTP response, not a socket and two loops.
/// </summary>
internal sealed partial class ConnectionGate
{
    private readonly OriginPolicy _origins;
    private readonly ClientAuthenticator _authenticator;
    private readonly UserLimits _limits;
    private readonly ILogger<ConnectionGate> _logger;
    private long _anonymous;

    public ConnectionGate(OriginPolicy origins, ClientAuthenticator authenticator, UserLimits limits, ILogger<ConnectionGate> logger)
    {
        _origins = origins;
        _authenticator = authenticator;
        _limits = limits;
        _logger = logger;
    }

    public async ValueTask<Admission> AdmitAsync(HttpContext context)
    {
        // Dual-stack listeners report IPv4 peers as ::ffff:a.b.c.d; one address is one address.
        var remote = context.Connection.RemoteIpAddress is { IsIPv4MappedToIPv6: true } mapped ? mapped.MapToIPv4() : context.Connection.RemoteIpAddress;
        if (!_origins.IsAllowed(context.Request))
        {
            LogRefused(remote, StatusCodes.Status403Forbidden, "origin not allowed");
            return new Admission(null, StatusCodes.Status403Forbidden, "origin_not_allowed",
                $"pages from {context.Request.Headers.Origin} may not open price sockets here (Server:AllowedOrigins)");
        }

        var (authentication, failure) = await _authenticator.AuthenticateAsync(context).ConfigureAwait(false);
        if (authentication is null)
        {
            LogRefused(remote, StatusCodes.Status401Unauthorized, failure);
            context.Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\"";
            return new Admission(null, StatusCodes.Status401Unauthorized, "unauthorized", failure);
        }

        var loopback = remote is null || IPAddress.IsLoopback(remote);
        var exempt = loopback && _limits.ExemptLoopback;
        var counted = exempt ? null : remote;
        var admit = authentication.Subject is { } subject
            ? _limits.TryAdmit("sub:" + subject, counted, out var user)
            : exempt
                ? _limits.TryAdmitConnection(Interlocked.Increment(ref _anonymous), out user)
                : _limits.TryAdmit("ip:" + remote, counted, out user);
        switch (admit)
        {
            case Admit.ServerFull:
                LogRefused(remote, StatusCodes.Status503ServiceUnavailable, "too many connections");
                context.Response.Headers.RetryAfter = "5";
                return new Admission(null, StatusCodes.Status503ServiceUnavailable, "server_full", "the daemon holds as many connections as it may (Limits:MaxConnections)");
            case Admit.UserFull:
                LogRefused(remote, StatusCodes.Status429TooManyRequests, "too many connections for one user");
                return new Admission(null, StatusCodes.Status429TooManyRequests, "too_many_connections", "this user holds as many connections as they may (Limits:MaxConnectionsPerUser)");
            case Admit.AddressFull:
                LogRefused(remote, StatusCodes.Status429TooManyRequests, "too many connections from one address");
                return new Admission(null, StatusCodes.Status429TooManyRequests, "too_many_connections", "this address holds as many connections as it may (Limits:MaxConnectionsPerIp)");
        }

        return new Admission(new ClientIdentity(user!, authentication.Subject, authentication.ExpiresAt, authentication.Subprotocol, counted), StatusCodes.Status101SwitchingProtocols, "", "");
    }

    public void Release(ClientIdentity client) => _limits.Release(client.User, client.CountedAddress);

    [LoggerMessage(EventId = 330, Level = LogLevel.Information, Message = "Refused a price socket from {RemoteAddress} with HTTP {StatusCode}: {Reason}")]
    private partial void LogRefused(IPAddress? remoteAddress, int statusCode, string reason);
}
