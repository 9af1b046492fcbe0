using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>
/// One load-generator connection on a plain <see cref="Socket"/>: manual handshake, masked client frames,
/// and frames parsed in place as they arrive. The socket is only ever used synchronously, so the runtime's
/// socket engine never watches it: connect and handshake block on a connecting thread, and afterwards the
/// socket is non-blocking and read by the <see cref="EpollReceiver"/> thread into its shared buffer. Only a
/// frame cut off at the end of a read is copied into a buffer of this connection's own, so 20,000 quiet
/// connections cost the harness almost nothing.
/// </summary>
internal sealed class RawWebSocketClient : EpollReceiver.IReadable, IDisposable
{
    private const int ReceiveBufferBytes = 16 * 1024;
    private const int MaxHandshakeBytes = 4096;
    private static readonly TimeSpan SendSpinLimit = TimeSpan.FromSeconds(5);

    private readonly Socket _socket;
    private readonly LoadClient _owner;
    private readonly Lock _sendLock = new();
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private EpollReceiver? _receiver;
    private nint _fd;
    private int _token;
    private byte[]? _buffer; // a partial frame carried to the next read; only the receive thread touches it
    private int _count;
    private bool _done;

    private RawWebSocketClient(Socket socket, LoadClient owner)
    {
        _socket = socket;
        _owner = owner;
    }

    /// <summary>Connects and completes the handshake, blocking; the server's reply must come within <paramref name="timeout"/>.</summary>
    public static RawWebSocketClient Connect(IPEndPoint endpoint, string path, LoadClient owner, TimeSpan timeout)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
        {
            NoDelay = true,
            ReceiveTimeout = (int)timeout.TotalMilliseconds,
            SendTimeout = (int)timeout.TotalMilliseconds,
        };
        var client = new RawWebSocketClient(socket, owner);
        try
        {
            socket.Connect(endpoint);
            client.Handshake($"{endpoint.Address}:{endpoint.Port}", path);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>Completes when the connection ended: closed by the server, failed, or disposed.</summary>
    public Task ReceiveLoop => _ended.Task;

    /// <summary>
    /// Hands frames that came with the handshake response to the owner, then the socket to
    /// <paramref name="receiver"/>. Called once, on the connecting thread, before anything is sent.
    /// </summary>
    public void StartReceiving(EpollReceiver receiver)
    {
        _socket.Blocking = false;
        if (_count > 0)
        {
            Consume(_buffer.AsSpan(0, _count), carried: true);
        }

        if (_done)
        {
            // The handshake's frames already ended it (a close frame, a protocol error): nothing to watch.
            return;
        }

        _fd = _socket.Handle;
        _token = receiver.Reserve(this);
        _receiver = receiver; // set with the token, before any event can reach OnReadable or End
        receiver.Watch(_token, _fd);
    }

    /// <summary>Something failed on the receive thread for this connection: it is counted and the connection ends.</summary>
    public void Fail(Exception ex)
    {
        _owner.OnProtocolError($"receive failed: {ex.GetType().Name}: {ex.Message}");
        End();
    }

    public void SendText(ReadOnlySpan<byte> payload) => Send(WebSocketOpcode.Text, payload);

    /// <summary>Reads what the socket has (one non-blocking receive) and parses every whole frame; on the receive thread.</summary>
    public void OnReadable(byte[] shared)
    {
        if (_done)
        {
            return;
        }

        var carried = _count > 0;
        if (carried && _count == _buffer!.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(_buffer.Length * 2);
            _buffer.AsSpan(0, _count).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }

        int read;
        SocketError error;
        try
        {
            read = _socket.Receive(carried ? _buffer.AsSpan(_count) : shared, SocketFlags.None, out error);
        }
        catch (ObjectDisposedException)
        {
            End();
            return;
        }

        if (error == SocketError.WouldBlock)
        {
            return;
        }

        if (error != SocketError.Success || read == 0)
        {
            // Reset, or the server closed the connection: the run's counters tell which.
            End();
            return;
        }

        Consume(carried ? _buffer.AsSpan(0, _count + read) : shared.AsSpan(0, read), carried);
    }

    public void Dispose()
    {
        _socket.Dispose();
        _ended.TrySetResult();
    }

    private void Handshake(string host, string path)
    {
        var key = WebSocketHandshake.NewKey();
        SendAll(WebSocketHandshake.Request(host, path, key));

        var buffer = ArrayPool<byte>.Shared.Rent(MaxHandshakeBytes);
        var count = 0;
        int end;
        while ((end = buffer.AsSpan(0, count).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (count == MaxHandshakeBytes)
            {
                throw new InvalidDataException("handshake response head is too large");
            }

            var read = _socket.Receive(buffer.AsSpan(count, MaxHandshakeBytes - count), SocketFlags.None);
            if (read == 0)
            {
                throw new IOException("server closed the connection during the handshake");
            }

            count += read;
        }

        if (WebSocketHandshake.Validate(Encoding.ASCII.GetString(buffer, 0, end), key) is { } error)
        {
            throw new InvalidDataException(error);
        }

        // Frames the server sent right after its response (the status frame) arrived in the same read.
        _count = count - (end + 4);
        if (_count > 0)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(ReceiveBufferBytes);
            buffer.AsSpan(end + 4, _count).CopyTo(_buffer);
        }

        ArrayPool<byte>.Shared.Return(buffer);
    }

    /// <summary>
    /// Parses every whole frame in <paramref name="data"/> and keeps the cut-off rest for the next read.
    /// <paramref name="carried"/>: the data lies in this connection's own buffer, not the shared one.
    /// </summary>
    private void Consume(ReadOnlySpan<byte> data, bool carried)
    {
        int consumed;
        try
        {
            consumed = Process(data);
        }
        catch (InvalidDataException ex)
        {
            _owner.OnProtocolError(ex.Message);
            End();
            return;
        }

        if (consumed < 0)
        {
            End();
            return;
        }

        var rest = data[consumed..];
        if (rest.IsEmpty)
        {
            if (_buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = null;
            }

            _count = 0;
            return;
        }

        if (!carried)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(ReceiveBufferBytes, rest.Length * 2));
        }

        rest.CopyTo(_buffer); // overlapping spans copy correctly
        _count = rest.Length;
    }

    /// <summary>Hands every complete frame to the owner and answers pings; the bytes consumed, or -1 when the connection ends.</summary>
    private int Process(ReadOnlySpan<byte> data)
    {
        var receivedUs = LoadClient.UnixMicrosecondsNow();
        var consumed = 0;
        while (WebSocketFrameParser.TryReadHeader(data[consumed..], out var header) && data.Length - consumed >= header.FrameLength)
        {
            var payload = data.Slice(consumed + header.HeaderLength, header.PayloadLength);
            consumed += header.FrameLength;
            switch (header.Opcode)
            {
                case WebSocketOpcode.Text when header.Fin:
                    _owner.OnMessage(payload, receivedUs);
                    break;
                case WebSocketOpcode.Ping:
                    if (!TrySendPong(payload))
                    {
                        return -1;
                    }

                    break;
                case WebSocketOpcode.Close:
                    return -1;
                case WebSocketOpcode.Pong:
                    break;
                default:
                    throw new InvalidDataException($"unexpected {header.Opcode} frame (fin {header.Fin}): both servers send whole text frames");
            }
        }

        return consumed;
    }

    private void End()
    {
        if (_done)
        {
            return;
        }

        _done = true;
        _receiver?.Remove(_token, _fd);
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
            _count = 0;
        }

        _owner.OnClosed();
        _ended.TrySetResult();
    }

    /// <summary>False when the connection is gone (the server reset it after its ping): it then just ends.</summary>
    private bool TrySendPong(ReadOnlySpan<byte> payload)
    {
        try
        {
            Send(WebSocketOpcode.Pong, payload);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Masked client frame; from the connecting thread (subscribe) or the receive thread (pong).</summary>
    private void Send(WebSocketOpcode opcode, ReadOnlySpan<byte> payload)
    {
        var frame = ArrayPool<byte>.Shared.Rent(WebSocketFrameParser.MaskedFrameLength(payload.Length));
        try
        {
            var length = WebSocketFrameParser.WriteMaskedFrame(frame, opcode, payload, (uint)Random.Shared.Next());
            lock (_sendLock)
            {
                SendAll(frame.AsSpan(0, length));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }
    }

    /// <summary>
    /// Writes all of <paramref name="data"/>. The harness's frames are tiny, so a non-blocking socket takes
    /// them at once; a full send buffer is waited out briefly rather than queued.
    /// </summary>
    private void SendAll(ReadOnlySpan<byte> data)
    {
        var started = Environment.TickCount64;
        while (!data.IsEmpty)
        {
            var sent = _socket.Send(data, SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock)
            {
                if (Environment.TickCount64 - started > SendSpinLimit.TotalMilliseconds)
                {
                    throw new IOException("the server stopped reading the load generator's frames");
                }

                Thread.Yield();
                continue;
            }

            if (error != SocketError.Success)
            {
                throw new SocketException((int)error);
            }

            data = data[sent..];
        }
    }
}
