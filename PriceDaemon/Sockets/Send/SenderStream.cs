namespace PriceDaemon.Sockets.Send;

/// <summary>
/// The stream a price socket's <see cref="System.Net.WebSockets.WebSocket"/> is built on: it reads the
/// connection's input, and every frame the WebSocket writes itself (pings, pongs, the close) goes through the
/// socket's <see cref="SocketSender"/>, the one path to the <see cref="IFrameSink"/>.
/// </summary>
internal sealed class SenderStream : Stream
{
    private readonly Stream _input;
    private readonly SocketSender _sender;
    private readonly Action _onDispose;
    private int _disposed;

    public SenderStream(Stream input, SocketSender sender, Action onDispose)
    {
        _input = input;
        _sender = sender;
        _onDispose = onDispose;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    // A read is asked for once the bytes of the last one are used up: the peer was heard (keep-alive, SocketSender.KeepAlive.cs).
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        _sender.Heard();
        return _input.ReadAsync(buffer, cancellationToken);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        _sender.Heard();
        return _input.ReadAsync(buffer, offset, count, cancellationToken);
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("synchronous reads would block a thread");

    // The WebSocket's own writes are whole frames; the caller's token is not passed on: a pending write ends
    // when the WebSocket aborts, which disposes this stream.
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        _sender.WriteOwnFrameAsync(buffer);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("synchronous writes would block a thread");

    // Every sink write is complete when it returns: nothing to flush.
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        // The WebSocket disposes its stream when it aborts (a keep-alive ping unanswered): a read or write still
        // pending must end then, as it would on a closed socket.
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _onDispose();
        }

        base.Dispose(disposing);
    }
}
