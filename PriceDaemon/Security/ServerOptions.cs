namespace PriceDaemon.Security;

/// <summary>The <c>Server</c> section: which web pages may open a price socket.</summary>
public sealed class ServerOptions
{
    public const string Section = "Server";

    /// <summary>
    /// Origins (<c>https://board.campus.example</c>) whose pages may connect besides the daemon's own origin;
    /// <c>*</c> allows any. Another Origin gets 403: that stops cross-site WebSocket hijacking, where a page on
    /// another site opens a socket with the visitor's cookies or network position.
    /// </summary>
    public string[] AllowedOrigins { get; set; } = [];

    /// <summary>Clients that send no Origin (services, wscat, native apps) are allowed unless this is false.</summary>
    public bool AllowMissingOrigin { get; set; } = true;
}
