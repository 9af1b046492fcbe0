using System.ComponentModel.DataAnnotations;

namespace PriceDaemon.Security;

public enum AuthMode
{
    /// <summary>Anonymous clients. Refused beyond loopback unless <see cref="AuthOptions.AllowAnonymousRemote"/> is set.</summary>
    None,

    /// <summary>Every WebSocket handshake carries a JWT from the campus backend; the user is its <c>sub</c> claim.</summary>
    Jwt,
}

/// <summary>The <c>Auth</c> section: who may open a price socket.</summary>
public sealed class AuthOptions
{
    public const string Section = "Auth";

    /// <summary><c>None</c> (the default, loopback only) or <c>Jwt</c>.</summary>
    public AuthMode Mode { get; set; } = AuthMode.None;

    /// <summary>
    /// Lets <c>Mode=None</c> listen beyond loopback. Off by default: an anonymous daemon on the network is a
    /// decision someone has to write down, not an accident of <c>--urls</c>.
    /// </summary>
    public bool AllowAnonymousRemote { get; set; }

    public JwtOptions Jwt { get; set; } = new();
}

/// <summary>The <c>Auth:Jwt</c> section: how the backend's tokens are checked.</summary>
public sealed class JwtOptions
{
    /// <summary>Expected <c>iss</c>. Required in Jwt mode.</summary>
    public string Issuer { get; set; } = "";

    /// <summary>Expected <c>aud</c>. Required in Jwt mode.</summary>
    public string Audience { get; set; } = "";

    /// <summary>HS256 shared secret (UTF-8, at least 32 bytes). Prefer the environment (<c>PRICEDAEMON_Auth__Jwt__SigningKey</c>) to a file.</summary>
    public string SigningKey { get; set; } = "";

    /// <summary>PEM public key (or certificate) of the backend: an RSA key means RS256, a P-256 EC key ES256.</summary>
    public string PublicKeyPath { get; set; } = "";

    /// <summary>Tolerated clock difference for <c>exp</c> and <c>nbf</c>. A token is closed at <c>exp</c> plus this.</summary>
    [Range(0, 300)]
    public int ClockSkewSeconds { get; set; } = 30;
}
