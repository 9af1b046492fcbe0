using System.Text;
using Microsoft.Extensions.Options;
using PriceDaemon.Hosting;

namespace PriceDaemon.Security;

internal static class SecurityServiceCollectionExtensions
{
    /// <summary>
    /// The <c>Auth</c> and <c>Server</c> sections, validated at start-up (including the refusal to serve
    /// anonymous clients beyond loopback), and the handshake gate with its per-user limits.
    /// </summary>
    public static IServiceCollection AddDaemonSecurity(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSectionOptions<AuthOptions>(configuration, AuthOptions.Section, o => AuthFailures(o, configuration));
        services.AddSectionOptions<ServerOptions>(configuration, ServerOptions.Section, static o =>
            o.AllowedOrigins.Where(static a => a != "*" && OriginPolicy.Normalize(a) is null)
                .Select(static a => $"AllowedOrigins: '{a}' is not an origin like https://board.campus.example (scheme and host, no path), nor *"));
        services.AddSingleton<OriginPolicy>();
        services.AddSingleton<ClientAuthenticator>();
        services.AddSingleton<UserLimits>();
        services.AddSingleton<ConnectionGate>();
        services.AddHostedService<SecurityStartupLog>();
        return services;
    }

    private static IEnumerable<string> AuthFailures(AuthOptions auth, IConfiguration configuration)
    {
        if (ListenPolicy.Refusal(auth, ListenPolicy.ConfiguredUrls(configuration)) is { } refusal)
        {
            yield return refusal;
        }

        if (auth.Mode != AuthMode.Jwt)
        {
            yield break;
        }

        var jwt = auth.Jwt;
        if (string.IsNullOrWhiteSpace(jwt.Issuer))
        {
            yield return "Jwt:Issuer: required when Auth:Mode is Jwt (the backend's 'iss')";
        }

        if (string.IsNullOrWhiteSpace(jwt.Audience))
        {
            yield return "Jwt:Audience: required when Auth:Mode is Jwt (the 'aud' the backend mints for this daemon)";
        }

        var hasSecret = !string.IsNullOrEmpty(jwt.SigningKey);
        var hasPublicKey = !string.IsNullOrEmpty(jwt.PublicKeyPath);
        if (hasSecret == hasPublicKey)
        {
            yield return "Jwt:SigningKey: set exactly one of Auth:Jwt:SigningKey (HS256 secret) and Auth:Jwt:PublicKeyPath (RS256/ES256 PEM)";
        }
        else if (hasSecret && Encoding.UTF8.GetByteCount(jwt.SigningKey) < JwtKey.MinSecretBytes)
        {
            // The secret itself is never printed.
            yield return $"Jwt:SigningKey: must be at least {JwtKey.MinSecretBytes} bytes (got {Encoding.UTF8.GetByteCount(jwt.SigningKey)})";
        }
        else if (hasPublicKey && LoadFailure(jwt) is { } failure)
        {
            yield return failure;
        }
    }

    private static string? LoadFailure(JwtOptions jwt)
    {
        try
        {
            JwtKey.Load(jwt);
            return null;
        }
        catch (InvalidDataException ex)
        {
            return ex.Message.StartsWith("Auth:", StringComparison.Ordinal) ? ex.Message["Auth:".Length..] : ex.Message;
        }
    }
}

/// <summary>States at start-up who may connect, so an operator reading the log knows what is exposed.</summary>
internal sealed partial class SecurityStartupLog : IHostedService
{
    private readonly IOptions<AuthOptions> _auth;
    private readonly IOptions<ServerOptions> _server;
    private readonly ClientAuthenticator _authenticator;
    private readonly ILogger<SecurityStartupLog> _logger;

    public SecurityStartupLog(IOptions<AuthOptions> auth, IOptions<ServerOptions> server, ClientAuthenticator authenticator, ILogger<SecurityStartupLog> logger)
    {
        _auth = auth;
        _server = server;
        _authenticator = authenticator;
        _logger = logger;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var auth = _auth.Value;
        if (auth.Mode == AuthMode.Jwt)
        {
            LogJwt(_authenticator.Key!.Algorithm, auth.Jwt.Issuer, auth.Jwt.Audience);
        }
        else
        {
            LogAnonymous(auth.AllowAnonymousRemote ? "anonymous clients from any address (Auth:AllowAnonymousRemote=true)" : "anonymous clients, loopback only");
        }

        var origins = _server.Value.AllowedOrigins;
        LogOrigins(origins.Length == 0 ? "no other" : string.Join(", ", origins), _server.Value.AllowMissingOrigin);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 340, Level = LogLevel.Information, Message = "Auth:Mode=Jwt: {Algorithm} tokens from issuer {Issuer} for audience {Audience}")]
    private partial void LogJwt(string algorithm, string issuer, string audience);

    [LoggerMessage(EventId = 341, Level = LogLevel.Information, Message = "Auth:Mode=None: {Scope}")]
    private partial void LogAnonymous(string scope);

    [LoggerMessage(EventId = 342, Level = LogLevel.Information, Message = "WebSocket origins allowed: the daemon's own and {Origins}; clients that send no Origin allowed: {AllowMissing}")]
    private partial void LogOrigins(string origins, bool allowMissing);
}
