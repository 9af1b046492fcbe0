namespace PriceDaemon.Sockets.Send;

/// <summary>What one keep-alive look found.</summary>
internal enum KeepAliveVerdict
{
    None,

    /// <summary>The peer was quiet for the interval: a ping went out.</summary>
    Pinged,

    /// <summary>A ping went unanswered (nothing at all arrived) for the interval: the connection must be cut.</summary>
    Unanswered,
}

/// <summary>
/// Keep-alive pings from the session sweep instead of a timer per socket. The WebSocket's own keep-alive held a
/// timer, its timer-queue entry and a ping state object for every socket (~0.25 KiB of an idle one); the sweep
/// already visits every socket once a second. A peer is alive while bytes arrive from it: any frame counts, a
/// pong as much as a message, so a client that talks needs no ping at all.
/// </summary>
internal sealed partial class SocketSender
{
    // FIN + ping, no payload; a server's frames are not masked.
    private static readonly byte[] PingFrame = [0x89, 0x00];

    // FIN + close: the first byte of the close frame the WebSocket writes.
    private const byte CloseFrameFirstByte = 0x88;

    private bool _closeWritten; // under _asideLock: a close frame joined a batch or the write order, so nothing may follow
    private bool _closeInAside; // under _asideLock: the frames kept aside for the batch being built end with our close
    private bool _closeSent; // holding the write order: our close frame was handed to the sink, so nothing more is written
    private long _heardAt; // when a read of the connection was last asked for: the read before it returned bytes
    private long _pingSentAt; // sweeper only; 0 while no ping is outstanding

    /// <summary>
    /// The WebSocket asks for more bytes: the ones it asked for before arrived (or the socket just opened). One clock
    /// read per read of the connection, not per frame written.
    /// </summary>
    internal void Heard() => Volatile.Write(ref _heardAt, _services.KeepAliveTime.GetTimestamp());

    /// <summary>
    /// Sweeper, once a second: pings a peer quiet for <paramref name="intervalTicks"/>, and finds one that left a ping
    /// unanswered for as long (the same rule as the WebSocket's own keep-alive timeout). 0 turns pings off. Both in
    /// ticks of <see cref="SessionServices.KeepAliveTime"/>.
    /// </summary>
    public KeepAliveVerdict KeepAlive(long now, long intervalTicks) => KeepAlive(now, intervalTicks, intervalTicks);

    /// <summary>
    /// As above, pinging after <paramref name="quietTicks"/> (at most the interval) of quiet: the session spreads its
    /// sockets' pings over the sweeps, so the sockets of a storm, heard in the same seconds, are not pinged together.
    /// </summary>
    public KeepAliveVerdict KeepAlive(long now, long intervalTicks, long quietTicks)
    {
        if (intervalTicks == 0 || IsClosing)
        {
            return KeepAliveVerdict.None;
        }

        var heard = Volatile.Read(ref _heardAt);
        if (_pingSentAt != 0)
        {
            if (heard <= _pingSentAt)
            {
                return now - _pingSentAt >= intervalTicks ? KeepAliveVerdict.Unanswered : KeepAliveVerdict.None;
            }

            _pingSentAt = 0; // answered, or the peer spoke
        }

        if (now - heard < quietTicks)
        {
            return KeepAliveVerdict.None;
        }

        _pingSentAt = Math.Max(1, now);
        _ = PingAsync();
        return KeepAliveVerdict.Pinged;
    }

    /// <summary>
    /// The same path as the WebSocket's own frames: never between the bytes of another frame, never after the close.
    /// Nobody awaits it, so it observes every failure itself (a Kestrel pipe that completed throws
    /// <see cref="InvalidOperationException"/>): an unobserved task exception would only reach the finalizer.
    /// </summary>
    private async Task PingAsync()
    {
        try
        {
            await WriteOwnFrameAsync(PingFrame, ping: true).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Whatever the write threw, the connection is gone: the receive side sees it end.
        }
    }
}
