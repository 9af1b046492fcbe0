using System.Buffers;
using Microsoft.AspNetCore.Http.Features;

namespace PriceDaemon.Sockets;

/// <summary>
/// Sits between the WebSocket and Kestrel's upgraded connection stream. Between <see cref="BeginBatch"/>
/// and <see cref="FlushBatchAsync"/> frame writes are appended to one pooled buffer, so a session that has
/// twenty frames queued pays for one socket write instead of twenty. Outside a batch (pings, pongs,
/// close frames written by the WebSocket itself) writes go straight through. One semaphore orders the two,
/// so bytes never interleave.
/// </summary>
internal sealed class BatchingStream : Stream
{
    private readonly Stream _inner;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private byte[]? _buffer;
    private int _count;
    private bool _batching;

    public BatchingStream(Stream inner)
    {
        _inner = inner;
    }

    /// <summary>Bytes appended in the current batch.</summary>
    public int BufferedBytes => _count;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>Only the session's writer calls this, and only outside a batch.</summary>
    public void BeginBatch() => _batching = true;

    /// <summary>Writes everything appended since <see cref="BeginBatch"/> in one write, and returns the buffer to the pool.</summary>
    public async ValueTask FlushBatchAsync(CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _batching = false;
            if (_count > 0)
            {
                await _inner.WriteAsync(_buffer.AsMemory(0, _count), cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _count = 0;
            if (_buffer is { } buffer)
            {
                // Idle sockets hold no send buffer: that is most of the memory of a quiet connection.
                _buffer = null;
                ArrayPool<byte>.Shared.Return(buffer);
            }

            _writeLock.Release();
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_batching)
            {
                Append(buffer.Span);
            }
            else
            {
                await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        _inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

    public override void Flush() => _inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync() => _inner.DisposeAsync();

    private void Append(ReadOnlySpan<byte> data)
    {
        if (_buffer is null || _buffer.Length - _count < data.Length)
        {
            var next = ArrayPool<byte>.Shared.Rent(Math.Max(4096, (_count + data.Length) * 2));
            if (_buffer is not null)
            {
                _buffer.AsSpan(0, _count).CopyTo(next);
                ArrayPool<byte>.Shared.Return(_buffer);
            }

            _buffer = next;
        }

        data.CopyTo(_buffer.AsSpan(_count));
        _count += data.Length;
    }
}

/// <summary>
/// Wraps Kestrel's upgrade feature so the WebSocket middleware builds its socket over a <see cref="BatchingStream"/>.
/// Installed just before <c>UseWebSockets</c> for the price endpoint only.
/// </summary>
internal sealed class BatchingUpgradeFeature : IHttpUpgradeFeature
{
    private readonly IHttpUpgradeFeature _inner;

    public BatchingUpgradeFeature(IHttpUpgradeFeature inner)
    {
        _inner = inner;
    }

    public bool IsUpgradableRequest => _inner.IsUpgradableRequest;

    public BatchingStream? Stream { get; private set; }

    public async Task<Stream> UpgradeAsync()
    {
        Stream = new BatchingStream(await _inner.UpgradeAsync().ConfigureAwait(false));
        return Stream;
    }
}
