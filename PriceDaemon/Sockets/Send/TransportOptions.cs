using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace PriceDaemon.Sockets.Send;

/// <summary>The <c>Transport</c> section: how bytes leave the daemon's sockets.</summary>
public sealed class TransportOptions
{
    public const string Section = "Transport";

    /// <summary>
    /// Threads that write ready frames to every socket; one pass writes everything a socket has ready in one
    /// write. 0: one per two cores, at least one and at most four.
    /// </summary>
    [Range(0, 64)]
    public int SendThreads { get; set; }

    /// <summary>
    /// Kestrel's <c>UnsafePreferInlineScheduling</c>: a write into Kestrel's pipe runs on the thread that made
    /// it, and socket reads are handled on the I/O thread, instead of both hopping to the thread pool. Less CPU
    /// and latency under load (see the README's performance section). On by default: nothing the daemon does on
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

/// <summary>
/// The transport keys lived in the <c>Server</c> section before <c>Transport</c> existed. An old key set in a
/// deployed file would otherwise be ignored without a word; it stops start-up and says where it went.
/// </summary>
internal sealed class MovedTransportKeys(IConfiguration configuration) : IValidateOptions<TransportOptions>
{
    private static readonly string[] _keys =
        [nameof(TransportOptions.SendThreads), nameof(TransportOptions.InlineSocketScheduling), nameof(TransportOptions.DirectSocketSends)];

    public ValidateOptionsResult Validate(string? name, TransportOptions options)
    {
        var moved = _keys.Where(key => configuration[$"Server:{key}"] is not null)
            .Select(static key => $"Server:{key}: moved to {TransportOptions.Section}:{key}").ToList();
        return moved.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(moved);
    }
}
