using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace PriceDaemon.Tests.Security;

/// <summary>
/// A WebSocket client written by hand on a TCP socket, for what <see cref="System.Net.WebSockets.ClientWebSocket"/>
/// will not do: send broken frames, control frames at odd times, and never answer a ping.
/// </summary>
internal sealed class RawWebSocket : IDisposable
{
    public const byte Continuation = 0x0, Text = 0x1, Binary = 0x2, Close = 0x8, Ping = 0x9, Pong = 0xA;

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly byte[] _buffer = new byte[256 * 1024];
    private int _start;
    private int _end;

    private RawWebSocket(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    /// <summary>A frame the server sent.</summary>
    public readonly record struct Frame(byte Opcode, bool Fin, byte[] Payload)
    {
        public int? CloseCode => Opcode == Close && Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(Payload) : null;

        public string Text => Encoding.UTF8.GetString(Payload);
    }

    /// <summary>What a connection saw until the server ended it.</summary>
    public sealed record Ending(int? CloseCode, int Pings, List<Frame> Frames);

    /// <param name="receiveBufferSize">The socket's receive buffer, set before it connects; null: the system's.</param>
    public static async Task<RawWebSocket> ConnectAsync(Uri baseUri, string path = "/api/ws/prices", int? receiveBufferSize = null)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (receiveBufferSize is { } size)
        {
            socket.ReceiveBufferSize = size;
        }

        await socket.ConnectAsync(baseUri.Host, baseUri.Port);
        var client = new RawWebSocket(socket);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var request = $"GET {path} HTTP/1.1\r\nHost: {baseUri.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await client._stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        var head = await client.ReadHeadAsync();
        if (!head.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
        {
            client.Dispose();
            throw new InvalidOperationException($"upgrade refused: {head.Split("\r\n")[0]}");
        }

        return client;
    }

    /// <summary>Writes one frame. Client frames are masked unless <paramref name="masked"/> is false (a protocol error).</summary>
    public async Task SendFrameAsync(byte opcode, ReadOnlyMemory<byte> payload, bool fin = true, bool masked = true, byte rsv = 0, long? declaredLength = null)
    {
        var length = declaredLength ?? payload.Length;
        var frame = new List<byte> { (byte)((fin ? 0x80 : 0) | (rsv << 4) | opcode) };
        var maskBit = masked ? 0x80 : 0;
        if (length < 126)
        {
            frame.Add((byte)(maskBit | (int)length));
        }
        else if (length <= ushort.MaxValue)
        {
            frame.Add((byte)(maskBit | 126));
            frame.Add((byte)(length >> 8));
            frame.Add((byte)length);
        }
        else
        {
            frame.Add((byte)(maskBit | 127));
            for (var shift = 56; shift >= 0; shift -= 8)
            {
                frame.Add((byte)(length >> shift));
            }
        }

        var body = payload.ToArray();
        if (masked)
        {
            var mask = RandomNumberGenerator.GetBytes(4);
            frame.AddRange(mask);
            for (var i = 0; i < body.Length; i++)
            {
                body[i] ^= mask[i % 4];
            }
        }

        frame.AddRange(body);
        try
        {
            await _stream.WriteAsync(frame.ToArray());
        }
        catch (IOException)
        {
            // The server may already have closed on an earlier frame; what it sent says why.
        }
    }

    public Task SendTextAsync(string text) => SendFrameAsync(Text, Encoding.UTF8.GetBytes(text));

    /// <summary>The next frame, or null at the end of the stream.</summary>
    public async Task<Frame?> ReadFrameAsync(CancellationToken ct)
    {
        if (!await FillAsync(2, ct))
        {
            return null;
        }

        var first = _buffer[_start];
        var second = _buffer[_start + 1];
        var length = (long)(second & 0x7F);
        var header = 2;
        if (length == 126)
        {
            if (!await FillAsync(4, ct))
            {
                return null;
            }

            length = BinaryPrimitives.ReadUInt16BigEndian(_buffer.AsSpan(_start + 2));
            header = 4;
        }
        else if (length == 127)
        {
            if (!await FillAsync(10, ct))
            {
                return null;
            }

            length = (long)BinaryPrimitives.ReadUInt64BigEndian(_buffer.AsSpan(_start + 2));
            header = 10;
        }

        if (!await FillAsync(header + (int)length, ct))
        {
            return null;
        }

        var payload = _buffer.AsSpan(_start + header, (int)length).ToArray();
        _start += header + (int)length;
        return new Frame((byte)(first & 0x0F), (first & 0x80) != 0, payload);
    }

    /// <summary>
    /// Reads at most <paramref name="maxBytes"/> of what has already arrived, never waiting: a reader at a fixed rate.
    /// The frames they complete come from <see cref="TakeFrame"/>. Returns the bytes read.
    /// </summary>
    public int ReadAvailable(int maxBytes)
    {
        var total = 0;
        while (total < maxBytes && _socket.Available > 0)
        {
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            var read = _socket.Receive(_buffer, _end, Math.Min(maxBytes - total, _buffer.Length - _end), SocketFlags.None);
            if (read == 0)
            {
                break;
            }

            _end += read;
            total += read;
        }

        return total;
    }

    /// <summary>The next frame among the bytes already read, or null when they hold no complete one.</summary>
    public Frame? TakeFrame()
    {
        var available = _buffer.AsSpan(_start, _end - _start);
        if (available.Length < 2)
        {
            return null;
        }

        var length = (long)(available[1] & 0x7F);
        var header = length switch { 126 => 4, 127 => 10, _ => 2 };
        if (available.Length < header)
        {
            return null;
        }

        length = header switch
        {
            4 => BinaryPrimitives.ReadUInt16BigEndian(available[2..]),
            10 => (long)BinaryPrimitives.ReadUInt64BigEndian(available[2..]),
            _ => length,
        };
        if (available.Length < header + length)
        {
            return null;
        }

        var payload = available.Slice(header, (int)length).ToArray();
        _start += header + (int)length;
        return new Frame((byte)(available[0] & 0x0F), (available[0] & 0x80) != 0, payload);
    }

    /// <summary>Reads, never answering pings, until the server closes or cuts the connection.</summary>
    public async Task<Ending> ReadUntilClosedAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var frames = new List<Frame>();
        var pings = 0;
        try
        {
            while (await ReadFrameAsync(cts.Token) is { } frame)
            {
                frames.Add(frame);
                if (frame.Opcode == Ping)
                {
                    pings++;
                }
                else if (frame.Opcode == Close)
                {
                    return new Ending(frame.CloseCode, pings, frames);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException)
        {
            // Reset by the server: cut, not closed.
        }

        return new Ending(null, pings, frames);
    }

    public void Dispose() => _stream.Dispose();

    private async Task<string> ReadHeadAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            var head = Encoding.ASCII.GetString(_buffer, 0, _end);
            var endOfHead = head.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (endOfHead >= 0)
            {
                _start = endOfHead + 4;
                return head[..endOfHead];
            }

            var read = await _stream.ReadAsync(_buffer.AsMemory(_end), timeout.Token);
            if (read == 0)
            {
                return head;
            }

            _end += read;
        }
    }

    private async Task<bool> FillAsync(int count, CancellationToken ct)
    {
        while (_end - _start < count)
        {
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            var read = await _stream.ReadAsync(_buffer.AsMemory(_end), ct);
            if (read == 0)
            {
                return false;
            }

            _end += read;
        }

        return true;
    }
}
