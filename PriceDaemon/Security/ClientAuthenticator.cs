using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace PriceDaemon.Security;

/// <summary>Who a handshake is: nobody in particular (Mode=None), or the <c>sub</c> of a valid JWT.</summary>
/// <param name="Subject">The token's <c>sub</c>; null for anonymous clients.</param>
/// <param name="ExpiresAt">When the token stops being valid (its <c>exp</c> plus the clock skew); the socket closes then.</param>
/// <param name="Subprotocol">The subprotocol to echo in the handshake, when the client offered one this daemon speaks.</param>
internal sealed record Authentication(string? Subject, DateTimeOffset? ExpiresAt, string? Subprotocol);

/// <summary>
/// Checks the token of a WebSocket handshake. It comes from <c>Authorization: Bearer</c>, from the
/// <c>Sec-WebSocket-Protocol</c> pair <c>bearer, &lt;token&gt;</c> (browsers cannot set headers on a WebSocket)
/// or from <c>?token=</c>, in that order of preference.
/// </summary>
/// <remarks>
/// <c>JsonWebTokenHandler</c> rather than the JwtBearer handler: the socket endpoint needs one yes/no before the
/// upgrade, the token's expiry to close the socket at, three token locations and the daemon's
/// <see cref="TimeProvider"/>; the authentication middleware would add schemes, challenges and per-request
/// claims principals for a single endpoint, and JwtBearer validates with this same handler underneath.
/// </remarks>
internal sealed class ClientAuthenticator
{
    /// <summary>The subprotocol that says "the next offered subprotocol is my token".</summary>
    public const string BearerSubprotocol = "bearer";

    // Kestrel already caps headers at 32 KiB; a token over this is not from our backend.
    private const int MaxTokenBytes = 8 * 1024;

    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false, MaximumTokenSizeInBytes = MaxTokenBytes };
    private readonly TokenValidationParameters? _parameters;
    private readonly TimeSpan _clockSkew;
    private readonly TimeProvider _time;

    public ClientAuthenticator(IOptions<AuthOptions> options, TimeProvider time)
    {
        var auth = options.Value;
        Mode = auth.Mode;
        _time = time;
        _clockSkew = TimeSpan.FromSeconds(auth.Jwt.ClockSkewSeconds);
        if (Mode == AuthMode.Jwt)
        {
            Key = JwtKey.Load(auth.Jwt);
            _parameters = new TokenValidationParameters
            {
                ValidIssuer = auth.Jwt.Issuer,
                ValidAudience = auth.Jwt.Audience,
                IssuerSigningKey = Key.Key,
                // Only the configured algorithm: an HS256 token "signed" with a public key, or alg=none, is refused.
                ValidAlgorithms = [Key.Algorithm],
                ValidateIssuer = true,
                ValidateAudience = true,
                // exp and nbf are checked below against the daemon's TimeProvider, the clock that also closes
                // the socket at exp; this library version reads the system clock.
                ValidateLifetime = false,
                RequireSignedTokens = true,
            };
        }
    }

    public AuthMode Mode { get; }

    public JwtKey? Key { get; }

    /// <summary>The client's identity, or null and the reason (safe to send back: it names no secret).</summary>
    public async ValueTask<(Authentication? Result, string Failure)> AuthenticateAsync(HttpContext context)
    {
        var (token, subprotocol) = FindToken(context);
        if (_parameters is null)
        {
            return (new Authentication(null, null, subprotocol), "");
        }

        if (string.IsNullOrEmpty(token))
        {
            return (null, "a token is required: Authorization: Bearer, Sec-WebSocket-Protocol: bearer, <token>, or ?token=");
        }

        var result = await _handler.ValidateTokenAsync(token, _parameters).ConfigureAwait(false);
        if (!result.IsValid)
        {
            return (null, Describe(result.Exception));
        }

        var jwt = (JsonWebToken)result.SecurityToken;
        if (!jwt.TryGetPayloadValue<long>("exp", out _))
        {
            return (null, "the token has no 'exp' claim");
        }

        var now = _time.GetUtcNow();
        var expiresAt = new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero) + _clockSkew;
        if (now >= expiresAt)
        {
            return (null, "the token has expired");
        }

        if (jwt.TryGetPayloadValue<long>("nbf", out _) && now + _clockSkew < new DateTimeOffset(jwt.ValidFrom, TimeSpan.Zero))
        {
            return (null, "the token is not valid yet (nbf)");
        }

        if (string.IsNullOrEmpty(jwt.Subject))
        {
            return (null, "the token has no 'sub' claim");
        }

        return (new Authentication(jwt.Subject, expiresAt, subprotocol), "");
    }

    private static (string? Token, string? Subprotocol) FindToken(HttpContext context)
    {
        string? subprotocolToken = null;
        string? subprotocol = null;
        var offered = context.WebSockets.WebSocketRequestedProtocols;
        if (offered.Any(static p => string.Equals(p, BearerSubprotocol, StringComparison.OrdinalIgnoreCase)))
        {
            // A client that offers subprotocols must get one back, or browsers fail the handshake.
            subprotocol = BearerSubprotocol;
            subprotocolToken = offered.FirstOrDefault(static p => !string.Equals(p, BearerSubprotocol, StringComparison.OrdinalIgnoreCase));
        }

        var header = context.Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return (header["Bearer ".Length..].Trim(), subprotocol);
        }

        if (subprotocolToken is not null)
        {
            return (subprotocolToken, subprotocol);
        }

        return (context.Request.Query["token"].ToString(), subprotocol);
    }

    private static string Describe(Exception? exception) => exception switch
    {
        SecurityTokenInvalidAudienceException => "the token is for another audience",
        SecurityTokenInvalidIssuerException => "the token is from another issuer",
        SecurityTokenInvalidAlgorithmException => "the token's signing algorithm is not accepted",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "the token's signature is not valid",
        SecurityTokenMalformedException or ArgumentException => "the token is malformed",
        _ => "the token is not valid",
    };
}
