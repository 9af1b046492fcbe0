using Microsoft.Extensions.Options;

namespace PriceDaemon.Security;

/// <summary>
/// Which pages may open a socket. A browser always sends the page's Origin with a WebSocket handshake and
/// never lets the page forge it, so checking it stops another site from opening sockets in a visitor's name.
/// The daemon's own origin (the board at <c>/</c>) is always allowed.
/// </summary>
internal sealed class OriginPolicy
{
    private readonly HashSet<string> _allowed;
    private readonly bool _any;
    private readonly bool _allowMissing;

    public OriginPolicy(IOptions<ServerOptions> options)
    {
        var server = options.Value;
        _any = server.AllowedOrigins.Contains("*");
        _allowMissing = server.AllowMissingOrigin;
        _allowed = server.AllowedOrigins.Where(static o => o != "*").Select(static o => Normalize(o) ?? o).ToHashSet(StringComparer.OrdinalIgnoreCase);
    }

    public bool IsAllowed(HttpRequest request)
    {
        var origins = request.Headers.Origin;
        if (origins.Count == 0)
        {
            return _allowMissing;
        }

        if (origins.Count > 1 || Normalize(origins[0]) is not { } origin)
        {
            // Several origins, "null" (sandboxed frames, file: pages) or garbage: no page we can name.
            return _any;
        }

        if (_any || _allowed.Contains(origin))
        {
            return true;
        }

        // Same origin: the page was served by this host. The scheme is not compared, so a TLS-terminating
        // proxy in front (https page, http request here) still counts as the same site.
        var authority = origin[(origin.IndexOf("://", StringComparison.Ordinal) + 3)..];
        return string.Equals(authority, request.Host.Value, StringComparison.OrdinalIgnoreCase)
            || string.Equals(StripDefaultPort(authority), StripDefaultPort(request.Host.Value ?? ""), StringComparison.OrdinalIgnoreCase);
    }

    /// <summary><c>scheme://host[:port]</c> in lower case with the scheme's default port left out; null if not an http(s) origin.</summary>
    public static string? Normalize(string? origin)
    {
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri)
            || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
            || uri.PathAndQuery is not ("/" or ""))
        {
            return null;
        }

        return uri.IsDefaultPort ? $"{uri.Scheme}://{uri.IdnHost}" : $"{uri.Scheme}://{uri.IdnHost}:{uri.Port}";
    }

    private static string StripDefaultPort(string authority) =>
        authority.EndsWith(":80", StringComparison.Ordinal) || authority.EndsWith(":443", StringComparison.Ordinal)
            ? authority[..authority.LastIndexOf(':')]
            : authority;
}
