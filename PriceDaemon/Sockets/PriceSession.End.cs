using PriceDaemon.Sockets.Send;

namespace PriceDaemon.Sockets;

/// <summary>
/// The end of a session, without a wait per socket: the receive loop and the sender each say when they have ended. The
/// first to end gives the other <c>Limits:CloseTimeoutSeconds</c> to finish the close handshake, then the connection is
/// cut; if even the cut does not end it within as long again, the session ends anyway (the receive loop keeps its
/// subscriptions until its read ends, see the class's remarks). Once both have ended, or the second timeout passed, the
/// session ends once: out of the registry, its slots back, the socket disposed, the run's task complete.
/// </summary>
internal sealed partial class PriceSession
{
    private const int ReceiveEnded = 1;
    private const int SendSideEnded = 2;
    private const int BothEnded = ReceiveEnded | SendSideEnded;
    private const int Finished = 4;

    /// <summary>
    /// The sender's send side has ended (its close frame is out, or a write failed). Told on the thread that ended it,
    /// which may be a send thread: the end (a log line, the socket's disposal) runs on the thread pool, as the
    /// continuation of a task's completion would, so no other socket's pass waits for it.
    /// </summary>
    void ISendEnd.SendEnded() => ThreadPool.UnsafeQueueUserWorkItem(static session => session.SideEnded(SendSideEnded), this, preferLocal: false);

    /// <summary>One side has ended: the end when it is the second, the close timeout for the other when it is the first.</summary>
    private void SideEnded(int side)
    {
        var ends = Interlocked.Or(ref _ends, side) | side;
        if ((ends & Finished) != 0)
        {
            return;
        }

        if ((ends & BothEnded) == BothEnded)
        {
            Finish();
            return;
        }

        var timer = _services.Time.CreateTimer(
            static s => ((PriceSession)s!).OnCloseTimeout(), this, TimeSpan.FromSeconds(_services.Limits.CloseTimeoutSeconds), Timeout.InfiniteTimeSpan);
        // A full fence before the look: Finish either sees this timer or is seen here.
        Interlocked.Exchange(ref _closeTimer, timer);
        if ((Volatile.Read(ref _ends) & Finished) != 0)
        {
            timer.Dispose();
        }
    }

    /// <summary>The other side did not end within the close timeout: cut the connection, and wait as long once more.</summary>
    private void OnCloseTimeout()
    {
        if ((Volatile.Read(ref _ends) & Finished) != 0)
        {
            return;
        }

        if (!_closeAborted)
        {
            _closeAborted = true;
            Abort();
            Volatile.Read(ref _closeTimer)?.Change(TimeSpan.FromSeconds(_services.Limits.CloseTimeoutSeconds), Timeout.InfiniteTimeSpan);
            return;
        }

        // An aborted connection always ends its pending I/O; if it ever does not, the session is still released rather
        // than holding the host's shutdown. Its subscriptions stay with the receive loop, which gives them back when its
        // read ends.
        SocketLog.SocketError(_logger, Id, Remote, "close", "loops did not end after abort");
        Finish();
    }

    /// <summary>Ends the session once: its timers stopped, then out of its owner, then the run's task complete.</summary>
    private void Finish()
    {
        if ((Interlocked.Or(ref _ends, Finished) & Finished) != 0)
        {
            return;
        }

        Volatile.Read(ref _closeTimer)?.Dispose();
        _expiry?.Dispose();
        var fault = Volatile.Read(ref _fault);
        try
        {
            if (_owner is { } end)
            {
                PriceSocketEndpoint.SessionEnded(this, _socket, end.Registry, _services, end.Gate, _client);
            }
        }
        catch (Exception ex)
        {
            fault ??= ex;
        }

        if (fault is null)
        {
            _run?.TrySetResult();
        }
        else
        {
            _run?.TrySetException(fault);
        }
    }
}
