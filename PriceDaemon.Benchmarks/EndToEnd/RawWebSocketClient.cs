using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>
/// One load-generator connection on a plain <see cref="Socket"/>: manual handshake, masked client frames,
/// and one receive loop that parses server frames in place. An idle socket holds no buffer: it waits with
/// a zero-byte receive and rents one from the pool only when data is readable (Kestrel's trick), so
/// 20,000 quiet connections cost the harness almost nothing.
/// </summary>
internal sealed class RawWebSocketClient : IDisposable
{
    private const int ReceiveBufferBytes = 16 * 1024;
    private const int MaxHandshakeBytes = 4096;

    private readonly Socket _socket;
    private readonly LoadClient _owner;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private byte[]? _buffer;
    private int _count;

    private RawWebSocketClient(Socket socket, LoadClient owner)
    {
        _socket = socket;
        _owner = owner;
    }

    public static async Task<RawWebSocketClient> ConnectAsync(IPEndPoint endpoint, string path, LoadClient owner, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var client = new RawWebSocketClient(socket, owner);
        try
        {
            await socket.ConnectAsync(endpoint, ct).ConfigureAwait(false);
            await client.HandshakeAsync($"{endpoint.Address}:{endpoint.Port}", path, ct).ConfigureAwait(false);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    public Task ReceiveLoop { get; private set; } = Task.CompletedTask;

    public void StartReceiving() => ReceiveLoop = ReceiveLoopAsync();

    public Task SendTextAsync(ReadOnlyMemory<byte> payload, CancellationToken ct) => SendAsync(WebSocketOpcode.Text, payload, ct);

    public void Dispose()
    {
        _socket.Dispose();
        _sendLock.Dispose();
    }

    private async Task HandshakeAsync(string host, string path, CancellationToken ct)
    {
        var key = WebSocketHandshake.NewKey();
        await _socket.SendAsync(WebSocketHandshake.Request(host, path, key), SocketFlags.None, ct).ConfigureAwait(false);

        var buffer = ArrayPool<byte>.Shared.Rent(MaxHandshakeBytes);
        var count = 0;
        int end;
        while ((end = buffer.AsSpan(0, count).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (count == MaxHandshakeBytes)
            {
                throw new InvalidDataException("handshake response head is too large");
            }

            var read = await _socket.ReceiveAsync(buffer.AsMemory(count, MaxHandshakeBytes - count), SocketFlags.None, ct).ConfigureAwait(false);
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

    private async Task ReceiveLoopAsync()
    {
        try
        {
            while (true)
            {
                if (_count > 0)
                {
                    var (consumed, reply) = Process(_buffer.AsSpan(0, _count));
                    _buffer.AsSpan(consumed, _count - consumed).CopyTo(_buffer);
                    _count -= consumed;
                    if (reply is { } r)
                    {
                        if (r.Opcode == WebSocketOpcode.Close)
                        {
                            return;
                        }

                        await SendAsync(r.Opcode, r.Payload, CancellationToken.None).ConfigureAwait(false);
                    }
                }

                if (_count == 0)
                {
                    if (_buffer is not null)
                    {
                        ArrayPool<byte>.Shared.Return(_buffer);
                        _buffer = null;
                    }

                    await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).ConfigureAwait(false);
                    _buffer = ArrayPool<byte>.Shared.Rent(ReceiveBufferBytes);
                }
                else if (_count == _buffer!.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent(_buffer.Length * 2);
                    _buffer.AsSpan(0, _count).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(_buffer);
                    _buffer = larger;
                }

                var read = await _socket.ReceiveAsync(_buffer.AsMemory(_count), SocketFlags.None).ConfigureAwait(false);
                if (read == 0)
                {
                    return;
                }

                _count += read;
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // The harness closed the socket, or the server went away: the run's counters tell which.
        }
        catch (InvalidDataException ex)
        {
            _owner.OnProtocolError(ex.Message);
        }
        finally
        {
            _owner.OnClosed();
        }
    }

    /// <summary>Hands every complete frame to the owner; returns the bytes consumed and a control reply to send, if any.</summary>
    private (int Consumed, (WebSocketOpcode Opcode, byte[] Payload)? Reply) Process(ReadOnlySpan<byte> data)
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
                    return (consumed, (WebSocketOpcode.Pong, payload.ToArray()));
                case WebSocketOpcode.Close:
                    return (consumed, (WebSocketOpcode.Close, []));
                case WebSocketOpcode.Pong:
                    break;
                default:
                    throw new InvalidDataException($"unexpected {header.Opcode} frame (fin {header.Fin}): both servers send whole text frames");
            }
        }

        return (consumed, null);
    }

    private async Task SendAsync(WebSocketOpcode opcode, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        var frame = ArrayPool<byte>.Shared.Rent(WebSocketFrameParser.MaskedFrameLength(payload.Length));
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var length = WebSocketFrameParser.WriteMaskedFrame(frame, opcode, payload.Span, (uint)Random.Shared.Next());
            await _socket.SendAsync(frame.AsMemory(0, length), SocketFlags.None, ct).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
            ArrayPool<byte>.Shared.Return(frame);
        }
    }
}
