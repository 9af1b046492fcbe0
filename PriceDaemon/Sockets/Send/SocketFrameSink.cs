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
/// No cancellation token per socket: a token source is 48 B of every idle socket, and a send given its token leaves a
/// registration table and a node on it (~0.14 KiB more) once it has ever been pending. Shutting the socket down ends
/// a pending send just as well, and whoever cancels is cutting the connection anyway.
/// </remarks>
internal sealed class SocketFrameSink : IFrameSink
{
    private readonly Socket _socket;

    public SocketFrameSink(Socket socket)
    {
        _socket = socket;
    }

    public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes) => SendAsync(_socket, bytes);

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
