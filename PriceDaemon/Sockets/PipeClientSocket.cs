using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;
using System.Threading.Tasks.Sources;
using PriceDaemon.Sockets.Send;

namespace PriceDaemon.Sockets;

/// <summary>
/// The client's side of a directly upgraded socket (<see cref="DirectUpgrade"/>): RFC 6455 frames read straight
/// from the connection's <see cref="PipeReader"/>, with no ManagedWebSocket and no stream under it. It keeps what
/// the session relied on the WebSocket for, with the same answers: client frames must be masked, text and binary
/// messages (the session refuses binary), fragments with control frames between them, a ping answered with a pong,
/// any frame counting as heard, the close handshake, and UTF-8 validated across fragments. A protocol error fails
/// the connection as ManagedWebSocket does: a close frame with the RFC's code (1002, or 1007 for bad UTF-8), then a
/// <see cref="WebSocketException"/>. Everything it writes (pong, close) goes through the sender's own-frame path,
/// never between the bytes of another frame.
/// </summary>
/// <remarks>
/// An idle socket's pending read holds the pipe's read and nothing of its own: payload is unmasked straight into the
/// session's buffer, and only a control frame's payload (at most 125 bytes) is copied, when it is answered. The wait for
/// a message's first frame (where a socket spends its life) is this object itself, not an async method's state machine
/// (~0.3 KiB live per waiting socket): the pipe's read calls it back, pings and pongs between messages are answered
/// there, and only a message's payload is read in an async method.
/// </remarks>
internal sealed class PipeClientSocket : IClientSocket, IValueTaskSource<ValueWebSocketReceiveResult>
{
    private const int MaxControlPayload = 125;
    private const int MaxHeaderBytes = 14; // 2 + 8 (64-bit length) + 4 (mask)
    private const int MaxCloseReasonBytes = MaxControlPayload - 2;
    private const byte Continuation = 0x0;
    private const byte Text = 0x1;
    private const byte Binary = 0x2;
    private const byte Close = 0x8;
    private const byte Ping = 0x9;
    private const byte Pong = 0xA;

    private readonly PipeReader _input;
    private readonly SocketSender _sender;
    private readonly IFrameSink _sink;

    // The frame being read: its payload left, its mask (byte k in bits 8k..8k+7) and where in it the next byte is,
    // and its FIN bit. _message: the opcode of the message in progress (Text or Binary), 0 between messages.
    private long _remaining;
    private int _mask;
    private int _maskOffset;
    private bool _final;
    private byte _message;

    // A text message's UTF-8 sequence cut by the end of a chunk: its first bytes (little-endian) and how many.
    private int _carry;
    private int _carryCount;

    // The wait for a message's start (IValueTaskSource): the pipe's pending read and the callback it completes into.
    private ManualResetValueTaskSourceCore<ValueWebSocketReceiveResult> _idle;
    private ValueTask<ReadResult> _idleRead;
    private Action? _onIdleRead;

    private WebSocketCloseStatus? _closeStatus;
    private int _closeSent; // 1 once a close frame was written (or the socket was aborted or disposed)
    private int _aborted; // 1 once aborted or disposed: the pending read and write were ended

    /// <param name="input">The connection's input, just after the handshake.</param>
    /// <param name="sender">The socket's sender: pongs and the close go out on its path; each read marks the peer heard.</param>
    /// <param name="sink">The sender's sink: an abort ends a write pending on it.</param>
    public PipeClientSocket(PipeReader input, SocketSender sender, IFrameSink sink)
    {
        _input = input;
        _sender = sender;
        _sink = sink;
    }

    private enum Step
    {
        /// <summary>More bytes are needed; nothing of an incomplete header was consumed.</summary>
        NeedMore,

        /// <summary>A result for the caller (message bytes, a message's start, or the peer's close).</summary>
        Result,

        /// <summary>A ping: its pong is to be written, then reading goes on.</summary>
        Reply,

        /// <summary>A pong: reading goes on.</summary>
        Skip,

        /// <summary>A protocol error: the connection fails with the status given.</summary>
        Fail,
    }

    public WebSocketCloseStatus? CloseStatus => _closeStatus;

    public bool CanSendClose => Volatile.Read(ref _closeSent) == 0;

    public ValueTask<ValueWebSocketReceiveResult> ReceiveAsync(Memory<byte> buffer)
    {
        if (!buffer.IsEmpty)
        {
            return ReceiveCoreAsync(buffer);
        }

        _idle.Reset();
        var version = _idle.Version;
        ContinueIdle();
        return new ValueTask<ValueWebSocketReceiveResult>(this, version);
    }

    /// <summary>
    /// Reads until a message starts (or the peer closes), answering the control frames that come between messages on
    /// the way: it ends the wait, or leaves the pipe's read pending with <see cref="OnIdleRead"/> to call back.
    /// </summary>
    /// <remarks>
    /// A socket that only answers the sweep's pings (every idle one, once a keep-alive interval) never leaves this path,
    /// so no async box and continuation (~0.3 KiB) waits under it until its next message. Only a pong whose write cannot
    /// finish at once, and a protocol error, go on in an async method.
    /// </remarks>
    private void ContinueIdle()
    {
        try
        {
            while (true)
            {
                // A read is asked for once the bytes of the last one are used: the peer was heard (SocketSender.KeepAlive.cs).
                _sender.Heard();
                var read = _input.ReadAsync();
                if (!read.IsCompleted)
                {
                    _idleRead = read;
                    read.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onIdleRead ??= OnIdleRead);
                    return;
                }

                if (!TakeIdle(read))
                {
                    return;
                }
            }
        }
        catch (Exception ex)
        {
            _idle.SetException(ex);
        }
    }

    /// <summary>The pipe's read ended while waiting for a message's start.</summary>
    private void OnIdleRead()
    {
        var read = _idleRead;
        _idleRead = default;
        try
        {
            if (!TakeIdle(read))
            {
                return;
            }
        }
        catch (Exception ex)
        {
            _idle.SetException(ex);
            return;
        }

        ContinueIdle();
    }

    /// <summary>
    /// One step of the wait for a message's start over a completed read, as <see cref="ReceiveCoreAsync"/> takes it with an
    /// empty buffer: true to read on, false once the wait has ended (or an async method finishes it).
    /// </summary>
    private bool TakeIdle(ValueTask<ReadResult> read)
    {
        var result = read.GetAwaiter().GetResult();
        if (result.IsCanceled || Volatile.Read(ref _aborted) != 0)
        {
            _input.AdvanceTo(result.Buffer.Start);
            _idle.SetException(new OperationCanceledException("the connection was aborted"));
            return false;
        }

        var data = result.Buffer;
        var step = Take(ref data, [], out var received, out var reply, out var failure, out var reason);
        if (step == Step.NeedMore)
        {
            _input.AdvanceTo(data.Start, result.Buffer.End);
            if (result.IsCompleted)
            {
                _idle.SetException(new WebSocketException(WebSocketError.ConnectionClosedPrematurely, "the peer closed the connection without a close frame"));
                return false;
            }

            return true;
        }

        // Whatever is left is not examined yet: the next read returns it at once.
        _input.AdvanceTo(data.Start);
        switch (step)
        {
            case Step.Result:
                _idle.SetResult(received);
                return false;
            case Step.Reply when Volatile.Read(ref _closeSent) == 0: // nothing of ours after our close frame
                var write = _sender.WriteOwnFrameAsync(reply);
                if (write.IsCompletedSuccessfully)
                {
                    // Taken, as an await would: a pooled source behind the write is given back only so.
                    write.GetAwaiter().GetResult();
                    return true;
                }

                _ = ContinueIdleAfterAsync(write);
                return false;
            case Step.Fail:
                _ = FailIdleAsync(failure, reason);
                return false;
            default:
                return true;
        }
    }

    /// <summary>A pong the sink could not take at once: the wait goes on once it is written.</summary>
    private async Task ContinueIdleAfterAsync(ValueTask write)
    {
        try
        {
            await write.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _idle.SetException(ex);
            return;
        }

        ContinueIdle();
    }

    /// <summary>As ManagedWebSocket: the close frame with the reason's code first, then the wait fails.</summary>
    private async Task FailIdleAsync(WebSocketCloseStatus failure, string reason)
    {
        try
        {
            await CloseOutputAsync(failure, "").ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _idle.SetException(ex);
            return;
        }

        _idle.SetException(new WebSocketException(WebSocketError.Faulted, reason));
    }

    ValueWebSocketReceiveResult IValueTaskSource<ValueWebSocketReceiveResult>.GetResult(short token) => _idle.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ValueWebSocketReceiveResult>.GetStatus(short token) => _idle.GetStatus(token);

    void IValueTaskSource<ValueWebSocketReceiveResult>.OnCompleted(
        Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) => _idle.OnCompleted(continuation, state, token, flags);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ValueWebSocketReceiveResult> ReceiveCoreAsync(Memory<byte> buffer)
    {
        while (true)
        {
            // A read is asked for once the bytes of the last one are used: the peer was heard (SocketSender.KeepAlive.cs).
            _sender.Heard();
            var read = await _input.ReadAsync().ConfigureAwait(false);
            if (read.IsCanceled || Volatile.Read(ref _aborted) != 0)
            {
                throw new OperationCanceledException("the connection was aborted");
            }

            var data = read.Buffer;
            var step = Take(ref data, buffer.Span, out var result, out var reply, out var failure, out var reason);
            if (step == Step.NeedMore)
            {
                _input.AdvanceTo(data.Start, read.Buffer.End);
                if (read.IsCompleted)
                {
                    throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, "the peer closed the connection without a close frame");
                }

                continue;
            }

            // Whatever is left is not examined yet: the next read returns it at once.
            _input.AdvanceTo(data.Start);
            switch (step)
            {
                case Step.Result:
                    return result;
                case Step.Reply when Volatile.Read(ref _closeSent) == 0: // nothing of ours after our close frame
                    await _sender.WriteOwnFrameAsync(reply).ConfigureAwait(false);
                    break;
                case Step.Fail:
                    // As ManagedWebSocket: the close frame with the reason's code first, then the read fails.
                    await CloseOutputAsync(failure, "").ConfigureAwait(false);
                    throw new WebSocketException(WebSocketError.Faulted, reason);
            }
        }
    }

    public Task CloseOutputAsync(WebSocketCloseStatus status, string reason)
    {
        if (Interlocked.Exchange(ref _closeSent, 1) != 0)
        {
            return Task.CompletedTask;
        }

        return _sender.WriteOwnFrameAsync(CloseFrame(status, reason)).AsTask();
    }

    public void Abort()
    {
        Interlocked.Exchange(ref _closeSent, 1);
        if (Interlocked.Exchange(ref _aborted, 1) == 0)
        {
            _input.CancelPendingRead();
            _sink.Cancel();
        }
    }

    /// <summary>As a WebSocket's dispose: no close frame from now on, and a read or write still pending ends.</summary>
    public void Dispose() => Abort();

    /// <summary>An unmasked server close frame (RFC 6455 §5.5.1): no body for <see cref="WebSocketCloseStatus.Empty"/>, else the code and the reason.</summary>
    internal static byte[] CloseFrame(WebSocketCloseStatus status, string reason)
    {
        if (status == WebSocketCloseStatus.Empty)
        {
            return [0x80 | Close, 0];
        }

        var reasonBytes = Encoding.UTF8.GetByteCount(reason) <= MaxCloseReasonBytes ? Encoding.UTF8.GetBytes(reason) : [];
        var frame = new byte[4 + reasonBytes.Length];
        frame[0] = 0x80 | Close;
        frame[1] = (byte)(2 + reasonBytes.Length);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)status);
        reasonBytes.CopyTo(frame, 4);
        return frame;
    }

    /// <summary>One step of reading from what has arrived: consumes what it used from <paramref name="data"/>.</summary>
    private Step Take(
        ref ReadOnlySequence<byte> data, Span<byte> destination, out ValueWebSocketReceiveResult result, out byte[] reply, out WebSocketCloseStatus failure, out string reason)
    {
        result = default;
        reply = [];
        failure = default;
        reason = "";
        while (true)
        {
            if (_remaining > 0)
            {
                return TakePayload(ref data, destination, out result, out failure, out reason);
            }

            if (!TryReadHeader(data, out var fin, out var opcode, out var length, out var mask, out var headerLength, out failure, out reason))
            {
                return reason.Length > 0 ? Step.Fail : Step.NeedMore;
            }

            if (opcode >= Close)
            {
                if (data.Length < headerLength + length)
                {
                    return Step.NeedMore;
                }

                var payload = data.Slice(headerLength, length);
                data = data.Slice(headerLength + length);
                return Control(opcode, payload, mask, out result, out reply, out failure, out reason);
            }

            if (opcode == Continuation ? _message == 0 : _message != 0)
            {
                (failure, reason) = (WebSocketCloseStatus.ProtocolError, opcode == Continuation
                    ? "a continuation frame without a message to continue"
                    : "a new message inside a fragmented one");
                return Step.Fail;
            }

            data = data.Slice(headerLength);
            if (opcode != Continuation)
            {
                _message = opcode;
            }

            (_final, _remaining, _mask, _maskOffset) = (fin, length, mask, 0);
            if (length == 0 && fin)
            {
                return EndOfMessage(0, out result, out failure, out reason);
            }

            if (destination.IsEmpty)
            {
                // The message's start, none of its payload: the caller rents a buffer only now.
                result = new ValueWebSocketReceiveResult(0, MessageType, false);
                return Step.Result;
            }
        }
    }

    private WebSocketMessageType MessageType => _message == Binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text;

    private Step TakePayload(
        ref ReadOnlySequence<byte> data, Span<byte> destination, out ValueWebSocketReceiveResult result, out WebSocketCloseStatus failure, out string reason)
    {
        (result, failure, reason) = (default, default, "");
        if (destination.IsEmpty)
        {
            result = new ValueWebSocketReceiveResult(0, MessageType, false);
            return Step.Result;
        }

        if (data.IsEmpty)
        {
            return Step.NeedMore;
        }

        var count = (int)Math.Min(Math.Min(_remaining, data.Length), destination.Length);
        var bytes = destination[..count];
        data.Slice(0, count).CopyTo(bytes);
        data = data.Slice(count);
        Unmask(bytes, _mask, _maskOffset);
        _maskOffset = (_maskOffset + count) & 3;
        _remaining -= count;
        if (_remaining == 0 && _final)
        {
            return _message == Text && !Utf8Chunk(bytes, final: false)
                ? Invalid(out failure, out reason)
                : EndOfMessage(count, out result, out failure, out reason);
        }

        if (_message == Text && !Utf8Chunk(bytes, final: false))
        {
            return Invalid(out failure, out reason);
        }

        result = new ValueWebSocketReceiveResult(count, MessageType, false);
        return Step.Result;
    }

    /// <summary>The last bytes of a message were read: a sequence still open at its end is invalid UTF-8.</summary>
    private Step EndOfMessage(int count, out ValueWebSocketReceiveResult result, out WebSocketCloseStatus failure, out string reason)
    {
        (result, failure, reason) = (default, default, "");
        if (_message == Text && !Utf8Chunk([], final: true))
        {
            return Invalid(out failure, out reason);
        }

        result = new ValueWebSocketReceiveResult(count, MessageType, true);
        _message = 0;
        return Step.Result;
    }

    private static Step Invalid(out WebSocketCloseStatus failure, out string reason)
    {
        (failure, reason) = (WebSocketCloseStatus.InvalidPayloadData, "the peer sent invalid UTF-8 in a text message");
        return Step.Fail;
    }

    private Step Control(
        byte opcode, ReadOnlySequence<byte> payload, int mask, out ValueWebSocketReceiveResult result, out byte[] reply, out WebSocketCloseStatus failure, out string reason)
    {
        (result, reply, failure, reason) = (default, [], default, "");
        Span<byte> body = stackalloc byte[MaxControlPayload];
        body = body[..(int)payload.Length];
        payload.CopyTo(body);
        Unmask(body, mask, 0);
        switch (opcode)
        {
            case Ping:
                reply = new byte[2 + body.Length];
                (reply[0], reply[1]) = (0x80 | Pong, (byte)body.Length);
                body.CopyTo(reply.AsSpan(2));
                return Step.Reply;
            case Pong:
                return Step.Skip;
            default:
                if (body.Length == 1 || (body.Length >= 2 && !IsValidCloseStatus(BinaryPrimitives.ReadUInt16BigEndian(body))))
                {
                    (failure, reason) = (WebSocketCloseStatus.ProtocolError, "the peer sent an invalid close frame");
                    return Step.Fail;
                }

                if (body.Length > 2 && !Utf8.IsValid(body[2..]))
                {
                    // ManagedWebSocket answers a bad close reason with 1002, not 1007: so do we.
                    (failure, reason) = (WebSocketCloseStatus.ProtocolError, "the peer sent an invalid close frame");
                    return Step.Fail;
                }

                _closeStatus = body.Length == 0 ? WebSocketCloseStatus.Empty : (WebSocketCloseStatus)BinaryPrimitives.ReadUInt16BigEndian(body);
                result = new ValueWebSocketReceiveResult(0, WebSocketMessageType.Close, true);
                return Step.Result;
        }
    }

    /// <summary>
    /// Reads a frame's header if all of it has arrived (false with an empty <paramref name="reason"/> if not), and checks
    /// what RFC 6455 asks of a client's frame; false with a reason for a frame that breaks it.
    /// </summary>
    private static bool TryReadHeader(
        ReadOnlySequence<byte> data, out bool fin, out byte opcode, out long length, out int mask, out int headerLength, out WebSocketCloseStatus failure, out string reason)
    {
        (fin, opcode, length, mask, headerLength, failure, reason) = (false, 0, 0, 0, 0, WebSocketCloseStatus.ProtocolError, "");
        if (data.Length < 2)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[MaxHeaderBytes];
        header = header[..(int)Math.Min(MaxHeaderBytes, data.Length)];
        data.Slice(0, header.Length).CopyTo(header);
        fin = (header[0] & 0x80) != 0;
        opcode = (byte)(header[0] & 0x0F);
        var length7 = header[1] & 0x7F;
        if ((header[0] & 0x70) != 0)
        {
            reason = "reserved bits set without an extension";
            return false;
        }

        if (opcode is > Binary and < Close or > Pong)
        {
            reason = $"reserved opcode {opcode}";
            return false;
        }

        if ((header[1] & 0x80) == 0)
        {
            reason = "a client frame must be masked";
            return false;
        }

        if (opcode >= Close && (!fin || length7 > MaxControlPayload))
        {
            reason = "a control frame must be whole and at most 125 bytes";
            return false;
        }

        var lengthBytes = length7 switch { 126 => 2, 127 => 8, _ => 0 };
        headerLength = 2 + lengthBytes + 4;
        if (header.Length < headerLength)
        {
            return false;
        }

        length = length7 switch
        {
            126 => BinaryPrimitives.ReadUInt16BigEndian(header[2..]),
            127 => (long)BinaryPrimitives.ReadUInt64BigEndian(header[2..]),
            _ => length7,
        };
        if (length < 0)
        {
            reason = "a payload length with its top bit set";
            return false;
        }

        mask = BinaryPrimitives.ReadInt32LittleEndian(header[(2 + lengthBytes)..]);
        return true;
    }

    /// <summary>
    /// The codes a peer may send (as ManagedWebSocket accepts them): the RFC's defined ones, the registered 1012-1014
    /// (service restart, try again later, bad gateway: proxies send them), and 3000-4999.
    /// </summary>
    private static bool IsValidCloseStatus(int code) =>
        code is (>= 3000 and < 5000) or 1000 or 1001 or 1002 or 1003 or (>= 1007 and <= 1014);

    private static void Unmask(Span<byte> bytes, int mask, int offset)
    {
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] ^= (byte)(mask >> (8 * ((offset + i) & 3)));
        }
    }

    /// <summary>
    /// Validates a text message chunk by chunk: a sequence cut by a chunk's end is kept (at most 3 bytes) and checked
    /// whole with the next chunk's first bytes; at the message's end nothing may be left open.
    /// </summary>
    private bool Utf8Chunk(ReadOnlySpan<byte> chunk, bool final)
    {
        if (_carryCount > 0)
        {
            Span<byte> sequence = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(sequence, _carry);
            var need = SequenceLength(sequence[0]);
            var take = Math.Min(need - _carryCount, chunk.Length);
            chunk[..take].CopyTo(sequence[_carryCount..]);
            chunk = chunk[take..];
            if (_carryCount + take < need)
            {
                _carryCount += take;
                _carry = BinaryPrimitives.ReadInt32LittleEndian(sequence);
                return !final;
            }

            if (!Utf8.IsValid(sequence[..need]))
            {
                return false;
            }

            _carryCount = 0;
        }

        var tail = OpenTail(chunk);
        if (!Utf8.IsValid(chunk[..^tail]))
        {
            return false;
        }

        if (tail > 0)
        {
            Span<byte> sequence = stackalloc byte[4];
            sequence.Clear();
            chunk[^tail..].CopyTo(sequence);
            (_carry, _carryCount) = (BinaryPrimitives.ReadInt32LittleEndian(sequence), tail);
        }

        return !(final && _carryCount > 0);
    }

    /// <summary>How many bytes at the end of <paramref name="chunk"/> start a sequence that runs past it.</summary>
    private static int OpenTail(ReadOnlySpan<byte> chunk)
    {
        for (var i = 1; i <= Math.Min(3, chunk.Length); i++)
        {
            var b = chunk[^i];
            if ((b & 0xC0) != 0x80)
            {
                return SequenceLength(b) > i ? i : 0;
            }
        }

        return 0;
    }

    /// <summary>The length a lead byte announces; a byte no sequence starts with counts as 4 and fails when checked whole.</summary>
    private static int SequenceLength(byte lead) => lead switch
    {
        < 0x80 => 1,
        < 0xC0 => 4,
        < 0xE0 => 2,
        < 0xF0 => 3,
        _ => 4,
    };
}
