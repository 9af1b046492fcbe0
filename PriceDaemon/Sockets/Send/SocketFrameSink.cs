using System.Net.Sockets;

namespace PriceDaemon.Sockets.Send;

/// <summary>
/// Writes straight to the connection's socket (Kestrel's socket transport exposes it, and
/// <c>Transport:DirectSocketSends</c> is on). A send completes inline when the kernel takes the bytes, as
/// Kestrel's own send loop would, without the copy into Kestrel's output pipe and the hand-over to that loop:
/// in campus-peak, one small write per frame, those were ~15 % of the send thread. Kestrel's send loop then
/// has nothing to send and only closes the socket at the end.
/// </summary>
/// <remarks>
/// A write is first a synchronous send on the socket switched to non-blocking mode: one <c>send</c> system call, no
/// <c>SocketAsyncContext</c> queue lock, no event-args state machine (those were ~3 % of campus-peak's samples, a
/// tenth of the send thread's user time). On Unix a non-blocking socket's synchronous send never waits: it returns
/// what the kernel took, <see cref="SocketError.WouldBlock"/> when that was nothing. Whatever the kernel did not
/// take then goes the asynchronous way, which waits for room without holding a thread; the caller orders writes
/// (one at a time), so the remainder is always the next bytes on the wire. Blocking mode is only the runtime's
/// flag for synchronous calls: Kestrel's receive (asynchronous, on the same socket) and its shutdown and dispose
/// do not depend on it. No cancellation token per socket: a token source is 48 B of every idle socket, and a send given
/// its token leaves a registration table and a node on it (~0.14 KiB more) once it has ever been pending. Shutting the
/// socket down ends a pending send just as well, and whoever cancels is cutting the connection anyway.
/// </remarks>
internal sealed class SocketFrameSink : IFrameSink
{
    private readonly Socket _socket;

    public SocketFrameSink(Socket socket)
    {
        _socket = socket;
        try
        {
            // A blocking socket's synchronous send would wait for room in the kernel's buffer, stalling the send
            // thread and every socket behind it: the synchronous send below is made only on a non-blocking one.
            socket.Blocking = false;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Gone already (a shutdown mid-handshake): the first write reports it.
        }
    }

    public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes)
    {
        int sent;
        SocketError error;
        try
        {
            // Never blocking, even if something set the socket back to blocking: then everything goes the async way.
            if (_socket.Blocking)
            {
                return SendAsync(_socket, bytes);
            }

            sent = _socket.Send(bytes.Span, SocketFlags.None, out error);
        }
        catch (ObjectDisposedException ex)
        {
            return ValueTask.FromException(new IOException(ex.Message, ex));
        }

        if (error is not (SocketError.Success or SocketError.WouldBlock))
        {
            var failure = new SocketException((int)error);
            return ValueTask.FromException(new IOException(failure.Message, failure));
        }

        // WouldBlock: nothing taken; Success: all, or as much as the kernel had room for.
        return sent == bytes.Length ? ValueTask.CompletedTask : SendAsync(_socket, bytes[sent..]);
    }

    /// <summary>Shuts the socket down both ways, which ends a pending send with an error (as Kestrel's own abort does).</summary>
    public void Cancel()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already shut down, reset or closed by Kestrel: nothing is pending on it any more.
        }
    }

    /// <summary>
    /// Sends all of <paramref name="buffer"/>. Errors of a closed or reset connection surface as IOException,
    /// as from a NetworkStream, including a socket Kestrel has already closed (a shutdown that aborted the
    /// connection mid-handshake).
    /// </summary>
    private static ValueTask SendAsync(Socket socket, ReadOnlyMemory<byte> buffer)
    {
        ValueTask<int> send;
        try
        {
            send = socket.SendAsync(buffer, SocketFlags.None);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return ValueTask.FromException(new IOException(ex.Message, ex));
        }

        if (send.IsCompletedSuccessfully)
        {
            _ = send.Result;
            return ValueTask.CompletedTask;
        }

        return AwaitSendAsync(send);

        static async ValueTask AwaitSendAsync(ValueTask<int> send)
        {
            try
            {
                await send.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                throw new IOException(ex.Message, ex);
            }
        }
    }
}
