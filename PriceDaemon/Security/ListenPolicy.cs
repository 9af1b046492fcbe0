using System.Net;

namespace PriceDaemon.Security;

/// <summary>Where the daemon will listen, read from the same keys Kestrel reads: <c>Kestrel:Endpoints:*:Url</c>, else <c>urls</c>.</summary>
internal static class ListenPolicy
{
    public static IReadOnlyList<string> ConfiguredUrls(IConfiguration configuration)
    {
        // Kestrel ignores urls when endpoints are configured, and so does this.
        var endpoints = configuration.GetSection("Kestrel:Endpoints").GetChildren()
            .Select(static e => e["Url"]).OfType<string>().ToList();
        if (endpoints.Count > 0)
        {
            return endpoints;
        }

        return (configuration["urls"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    /// <summary>
    /// True for an address only this machine can reach. Kestrel binds any host name other than
    /// <c>localhost</c> (and <c>*</c>, <c>+</c>) to every interface, so those count as remote.
    /// </summary>
    public static bool IsLoopback(string url)
    {
        BindingAddress address;
        try
        {
            address = BindingAddress.Parse(url);
        }
        catch (FormatException)
        {
            return false;
        }

        if (address.IsUnixPipe || address.IsNamedPipe)
        {
            return true;
        }

        var host = address.Host.Trim('[', ']');
        return string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
    }

    /// <summary>The refusal to print, or null when the configuration may start.</summary>
    public static string? Refusal(AuthOptions auth, IEnumerable<string> urls)
    {
        if (auth.Mode != AuthMode.None || auth.AllowAnonymousRemote)
        {
            return null;
        }

        var remote = urls.Where(static u => !IsLoopback(u)).ToList();
        return remote.Count == 0
            ? null
            : $"Mode: None (anonymous) refuses to listen beyond loopback on {string.Join(", ", remote)}; "
              + "set Auth:Mode=Jwt, or Auth:AllowAnonymousRemote=true to serve anonymous clients on the network";
    }
}
