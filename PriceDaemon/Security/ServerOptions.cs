using System.ComponentModel.DataAnnotations;

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

    /// <summary>
    /// Threads that write ready frames to every socket; one pass writes everything a socket has ready in one
    /// write. 0: one per two cores, at least one and at most four.
    /// </summary>
    [Range(0, 64)]
    public int SendThreads { get; set; }

    /// <summary>
    /// Kestrel's <c>UnsafePreferInlineScheduling</c>: a socket write runs on the send thread that made it, and
    /// socket reads are handled on the I/O thread, instead of both hopping to the thread pool. Less CPU and
    /// latency under load (see the README's performance section). On by default: nothing the daemon does on
    /// a socket's read path blocks (prices are served from memory; storage is read only at start-up). Turn it
    /// off if a change ever adds a blocking handler, which would then hold up other sockets' I/O.
    /// </summary>
    public bool InlineSocketScheduling { get; set; } = true;

    /// <summary>
    /// On Kestrel's socket transport, a price socket answered by the direct handshake writes straight to its
    /// socket instead of through Kestrel's output pipe (one copy and one hand-over less per write; reads still
    /// go through Kestrel). Such writes run on the send thread whatever <see cref="InlineSocketScheduling"/>
    /// says: they never block, a write the kernel cannot take at once completes later. Off: Kestrel's pipe.
    /// </summary>
    public bool DirectSocketSends { get; set; } = true;
}
