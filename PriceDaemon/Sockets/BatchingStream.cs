using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using Microsoft.AspNetCore.Http.Features;

namespace PriceDaemon.Sockets;

/// <summary>
/// Sits between the WebSocket and Kestrel's upgraded connection stream. Between <see cref="BeginBatch"/>
/// and <see cref="FlushBatchAsync"/> the session's writer appends whole text frames straight into one pooled
/// buffer (<see cref="AppendTextFrame"/>), so a session with twenty frames queued pays for one socket write
/// instead of twenty, and a frame costs a header and a copy. Only the writer touches that buffer, so an
/// append takes no lock. Frames the WebSocket writes itself (pings, pongs, close) arrive through
/// <see cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/>, always as whole frames and from any
/// thread: inside a batch they are kept aside under a lock and go out at the end of the same write, outside
/// one they go straight through. A semaphore orders socket writes, so bytes of two frames never interleave.
/// </summary>
internal sealed class BatchingStream : Stream
{
    private readonly Stream _inner;
    private readonly Lock _bufferLock = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private byte[]? _buffer; // the writer's, between BeginBatch and FlushBatchAsync
    private int _count;
    private bool _batching; // under _bufferLock
    private byte[]? _aside; // the WebSocket's own frames written during a batch; under _bufferLock
    private int _asideCount;

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
    public void BeginBatch()
    {
        lock (_bufferLock)
        {
            _batching = true;
        }
    }

    /// <summary>
    /// Appends one complete, unmasked server-to-client text frame (RFC 6455 §5.2: FIN, opcode 1, no mask).
    /// Only the session's writer, only inside a batch.
    /// </summary>
    public void AppendTextFrame(ReadOnlySpan<byte> payload)
    {
        Span<byte> header = stackalloc byte[10];
        header[0] = 0x81;
        int headerLength;
        if (payload.Length < 126)
        {
            header[1] = (byte)payload.Length;
            headerLength = 2;
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            header[1] = 126;
            BinaryPrimitives.WriteUInt16BigEndian(header[2..], (ushort)payload.Length);
            headerLength = 4;
        }
        else
        {
            header[1] = 127;
            BinaryPrimitives.WriteUInt64BigEndian(header[2..], (ulong)payload.Length);
            headerLength = 10;
        }

        Debug.Assert(_batching, "frames are appended only inside a batch");
        Append(ref _buffer, ref _count, header[..headerLength]);
        Append(ref _buffer, ref _count, payload);
    }

    /// <summary>Writes everything appended since <see cref="BeginBatch"/> in one write, and returns the buffer to the pool.</summary>
    public async ValueTask FlushBatchAsync(CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        byte[]? aside;
        int asideCount;
        lock (_bufferLock)
        {
            _batching = false;
            (aside, asideCount) = (_aside, _asideCount);
            (_aside, _asideCount) = (null, 0);
        }

        if (aside is not null)
        {
            Append(ref _buffer, ref _count, aside.AsSpan(0, asideCount));
            ArrayPool<byte>.Shared.Return(aside);
        }

        var (buffer, count) = (_buffer, _count);
        (_buffer, _count) = (null, 0);

        try
        {
            if (count > 0)
            {
                await _inner.WriteAsync(buffer.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            if (buffer is not null)
            {
                // Idle sockets hold no send buffer: that is most of the memory of a quiet connection.
                ArrayPool<byte>.Shared.Return(buffer);
            }

            _writeLock.Release();
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        lock (_bufferLock)
        {
            if (_batching)
            {
                Append(ref _aside, ref _asideCount, buffer.Span);
                return ValueTask.CompletedTask;
            }
        }

        return WriteThroughAsync(buffer, cancellationToken);
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

    private async ValueTask WriteThroughAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private static void Append(ref byte[]? buffer, ref int count, ReadOnlySpan<byte> data)
    {
        if (buffer is null || buffer.Length - count < data.Length)
        {
            var next = ArrayPool<byte>.Shared.Rent(Math.Max(4096, (count + data.Length) * 2));
            if (buffer is not null)
            {
                buffer.AsSpan(0, count).CopyTo(next);
                ArrayPool<byte>.Shared.Return(buffer);
            }

            buffer = next;
        }

        data.CopyTo(buffer.AsSpan(count));
        count += data.Length;
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
