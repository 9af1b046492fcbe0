using System.Buffers.Binary;

namespace PriceDaemon.Benchmarks.EndToEnd;

internal enum WebSocketOpcode : byte
{
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

/// <summary>The header of one server frame: what follows it and how much of it.</summary>
internal readonly record struct WebSocketFrameHeader(WebSocketOpcode Opcode, bool Fin, int HeaderLength, int PayloadLength)
{
    public int FrameLength => HeaderLength + PayloadLength;
}

/// <summary>
/// RFC 6455 framing for the load generator's raw client: reads unmasked server frames and writes masked
/// client frames. Only what the harness needs: no extensions, payloads below 2 GiB.
/// </summary>
internal static class WebSocketFrameParser
{
    /// <summary>
    /// Reads the frame header at the start of <paramref name="buffer"/>. False when more bytes are needed.
    /// Throws for what a server must never send: a masked frame, reserved bits, a payload past 2 GiB.
    /// </summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> buffer, out WebSocketFrameHeader header)
    {
        header = default;
        if (buffer.Length < 2)
        {
            return false;
        }

        var first = buffer[0];
        var second = buffer[1];
        if ((first & 0x70) != 0)
        {
            throw new InvalidDataException("WebSocket frame uses reserved bits (no extension was negotiated)");
        }

        if ((second & 0x80) != 0)
        {
            throw new InvalidDataException("WebSocket server frames must not be masked");
        }

        long length = second & 0x7F;
        var headerLength = 2;
        if (length == 126)
        {
            if (buffer.Length < 4)
            {
                return false;
            }

            length = BinaryPrimitives.ReadUInt16BigEndian(buffer[2..]);
            headerLength = 4;
        }
        else if (length == 127)
        {
            if (buffer.Length < 10)
            {
                return false;
            }

            length = (long)BinaryPrimitives.ReadUInt64BigEndian(buffer[2..]);
            headerLength = 10;
            if (length > int.MaxValue - headerLength)
            {
                throw new InvalidDataException($"WebSocket frame of {length} bytes is larger than the harness accepts");
            }
        }

        header = new WebSocketFrameHeader((WebSocketOpcode)(first & 0x0F), (first & 0x80) != 0, headerLength, (int)length);
        return true;
    }

    /// <summary>Bytes a masked client frame with a payload of <paramref name="payloadLength"/> bytes takes.</summary>
    public static int MaskedFrameLength(int payloadLength) => payloadLength switch
    {
        < 126 => 6 + payloadLength,
        <= ushort.MaxValue => 8 + payloadLength,
        _ => 14 + payloadLength,
    };

    /// <summary>Writes one final, masked client frame into <paramref name="destination"/>; returns its length.</summary>
    public static int WriteMaskedFrame(Span<byte> destination, WebSocketOpcode opcode, ReadOnlySpan<byte> payload, uint mask)
    {
        destination[0] = (byte)(0x80 | (byte)opcode);
        int offset;
        if (payload.Length < 126)
        {
            destination[1] = (byte)(0x80 | payload.Length);
            offset = 2;
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            destination[1] = 0x80 | 126;
            BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)payload.Length);
            offset = 4;
        }
        else
        {
            destination[1] = 0x80 | 127;
            BinaryPrimitives.WriteUInt64BigEndian(destination[2..], (ulong)payload.Length);
            offset = 10;
        }

        BinaryPrimitives.WriteUInt32BigEndian(destination[offset..], mask);
        var maskBytes = destination.Slice(offset, 4);
        offset += 4;
        for (var i = 0; i < payload.Length; i++)
        {
            destination[offset + i] = (byte)(payload[i] ^ maskBytes[i & 3]);
        }

        return offset + payload.Length;
    }

    /// <summary>Writes one final, unmasked server frame (the raw ceiling sends these); returns its length.</summary>
    public static int WriteServerFrame(Span<byte> destination, WebSocketOpcode opcode, ReadOnlySpan<byte> payload)
    {
        destination[0] = (byte)(0x80 | (byte)opcode);
        int offset;
        if (payload.Length < 126)
        {
            destination[1] = (byte)payload.Length;
            offset = 2;
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            destination[1] = 126;
            BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)payload.Length);
            offset = 4;
        }
        else
        {
            destination[1] = 127;
            BinaryPrimitives.WriteUInt64BigEndian(destination[2..], (ulong)payload.Length);
            offset = 10;
        }

        payload.CopyTo(destination[offset..]);
        return offset + payload.Length;
    }
}
