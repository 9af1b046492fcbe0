using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Sockets.Send;

/// <summary>One send pass: what goes into a write, in which order, and the write itself.</summary>
internal sealed partial class SocketSender
{
    /// <summary>Appends everything ready to one batch and writes it; synchronous unless the sink pushes back.</summary>
    private ValueTask WriteReady()
    {
        // Once a close is requested prices stop (unless it wants them first), but queued control frames (the
        // error that explains the close) still go out ahead of the close frame.
        var pricesToo = Volatile.Read(ref _close) is not { PricesFirst: false } && !_aborted;
        BeginBatch();
        try
        {
            return AppendAndFlush(pricesToo);
        }
        catch
        {
            AbandonBatch();
            throw;
        }
    }

    private ValueTask AppendAndFlush(bool pricesToo)
    {
        var control = TakeControl();
        while (control is not null && _count < MaxBatchBytes)
        {
            Interlocked.Decrement(ref _controlCount);
            AppendTextFrame(control.Utf8);
            control = control.Next;
        }

        _controlCarry = control;
        var sent = 0;
        long oldest = long.MaxValue;
        if (pricesToo && control is null && PricesDue(out var roundAt))
        {
            bool all;
            // Cached price frames are pooled: their bytes are copied into the batch inside a read scope, before the write.
            using (var scope = _services.Cache.Read())
            {
                all = AppendPrices(ref sent, ref oldest);
            }

            if (all && roundAt != 0 && sent > 0)
            {
                // A downsampled socket's round is over: the next one is an interval away.
                _nextRoundAt = roundAt + _services.Flow.IntervalTicks;
            }
        }

        var flush = FlushBatch();
        if (!flush.IsCompletedSuccessfully)
        {
            // Only a write the sink did not take at once can stall, so only such a write is timed (one clock
            // read per write saved). Set before the continuation exists: EndPass, which clears it, runs after.
            Volatile.Write(ref _writeStartedAt, Math.Max(1, _services.Time.GetTimestamp()));
            return AfterFlushAsync(flush, sent, oldest);
        }

        Sent(sent, oldest);
        return ValueTask.CompletedTask;
    }

    /// <summary>Appends the frame of every marked slot; false when the batch filled first (the rest stays marked).</summary>
    private bool AppendPrices(ref int sent, ref long oldest)
    {
        // A pass starts where the last one that filled its batch stopped, so low slots that fan-out keeps
        // marking cannot starve the high ones.
        var words = _ready.WordCount;
        var timing = _timing; // read once a pass: a socket that never asked pays this and the branch below
        for (var i = 0; i < words; i++)
        {
            var word = (_nextWord + i) % words;
            var marks = _ready.Take(word);
            // Read after the marks are taken: the array then holds every subscription that made one (Add
            // publishes a grown array before the subscription can be offered anything).
            var slots = Volatile.Read(ref _slots);
            while (marks != 0)
            {
                if (_count >= MaxBatchBytes)
                {
                    _ready.Return(word, marks);
                    _nextWord = word;
                    return false;
                }

                if (Price(slots, ReadySlots.Next(word, ref marks), ref oldest) is { } frame)
                {
                    AppendTextFrame(timing && frame is PriceFrame price ? price.TimedUtf8(_services.Time).Span : frame.Utf8.Span);
                    sent++;
                }
            }
        }

        return true;
    }

    /// <summary>
    /// The frame to write for a marked slot, or null: the instrument's cached frame (or the snapshot offered on
    /// subscribe, when the cache has nothing newer) if the subscription is live and the frame is newer than
    /// what the socket last got. The sequence check also keeps an older price from ever following a newer one.
    /// </summary>
    private StreamFrame? Price(Subscription?[] slots, int slot, ref long oldest)
    {
        if ((uint)slot >= (uint)slots.Length || Volatile.Read(ref slots[slot]) is not { } item || item.Removed)
        {
            return null;
        }

        if (slot >= _sent.Length)
        {
            Array.Resize(ref _sent, slots.Length);
        }

        ref var sent = ref _sent[slot];
        if (!ReferenceEquals(sent.Subscription, item))
        {
            // A slot freed and taken again: the new subscription has sent nothing yet.
            sent = new SentState(item, 0);
        }

        // Prices, the hot path, read the cache directly: a field read and a null check, no interface call.
        var frame = item.Source is null ? _services.Cache.Get(item.InstrumentId) : item.Source.Latest(item.InstrumentId);
        var fromSnapshot = false;
        if (item.TakeSnapshot() is { } snapshot)
        {
            if (ReferenceEquals(snapshot, Subscription.CachedSnapshot))
            {
                // The cached price was the snapshot (a pooled frame is not held): the cache has it or a newer one.
                fromSnapshot = true;
            }
            else if (frame is null || snapshot.Seq >= frame.Seq)
            {
                // The same price labelled stale while the feed is down; or a cache that was just replaced.
                frame = snapshot;
                fromSnapshot = true;
            }
        }

        if (frame is null || frame.Seq <= sent.Seq)
        {
            return null;
        }

        sent.Seq = frame.Seq;
        // A snapshot's age is the age of the cached price, not delivery latency: the histogram leaves it out.
        if (!fromSnapshot && frame.ReceivedTimestamp != 0 && frame.ReceivedTimestamp < oldest)
        {
            oldest = frame.ReceivedTimestamp;
        }

        return frame;
    }

    private async ValueTask AfterFlushAsync(ValueTask flush, int sent, long oldest)
    {
        await flush.ConfigureAwait(false);
        Sent(sent, oldest);
    }

    private void Sent(int frames, long oldest)
    {
        var metrics = _services.Metrics;
        if (frames > 0)
        {
            Interlocked.Add(ref metrics.FramesSent, frames);
            Interlocked.Increment(ref metrics.SocketWrites);
        }

        if (oldest != long.MaxValue && metrics.SendLatency.Enabled)
        {
            metrics.SendLatency.Record(_services.Time.GetElapsedTime(oldest).TotalSeconds);
        }
    }

    private void PushControl(ControlFrame item)
    {
        var head = Volatile.Read(ref _controlHead);
        while (true)
        {
            item.Next = head;
            var seen = Interlocked.CompareExchange(ref _controlHead, item, head);
            if (ReferenceEquals(seen, head))
            {
                break;
            }

            head = seen;
        }
    }

    /// <summary>
    /// What an earlier pass left over, or else every queued control frame, oldest first. Leftovers are older
    /// than anything queued since, so taking them alone keeps the order; the rest waits for the next pass.
    /// </summary>
    private ControlFrame? TakeControl()
    {
        if (_controlCarry is { } carry)
        {
            _controlCarry = null;
            return carry;
        }

        // Most passes have no control frame: a plain read spares them the interlocked exchange.
        var list = Volatile.Read(ref _controlHead) is null ? null : Interlocked.Exchange(ref _controlHead, null);
        ControlFrame? fifo = null;
        while (list is not null)
        {
            var next = list.Next;
            list.Next = fifo;
            fifo = list;
            list = next;
        }

        return fifo;
    }

    /// <summary>
    /// Opens the batch without the aside lock: a frame of the WebSocket's own that looks at the flag under the lock just
    /// before this write still sees it closed and is written through, after or before this pass's write, which for two
    /// writers at once is either order. What the lock guards is the aside buffer: a frame appended to it (the flag seen
    /// open, under the lock) is taken by this batch's flush, which closes the flag and takes the buffer under the lock.
    /// </summary>
    private void BeginBatch() => Volatile.Write(ref _batching, true);

    /// <summary>
    /// A pass that threw before its write: the WebSocket's own frames go straight out again, those kept aside for this
    /// batch too (a ping dropped here would leave a live, quiet peer to be cut as unanswering), and the buffers go back.
    /// </summary>
    private void AbandonBatch()
    {
        var (aside, asideCount, closeInAside) = EndBatching();
        if (aside is not null)
        {
            _ = WriteAsideAsync(aside, asideCount, closeInAside);
        }

        if (_buffer is { } buffer)
        {
            (_buffer, _count) = (null, 0);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Closes the batch to own frames and takes what was kept aside for it (and whether that ends with our close).</summary>
    private (byte[]? Aside, int Count, bool CloseInAside) EndBatching()
    {
        lock (_asideLock)
        {
            _batching = false;
            var taken = (_aside, _asideCount, _closeInAside);
            (_aside, _asideCount, _closeInAside) = (null, 0, false);
            return taken;
        }
    }

    /// <summary>Appends one complete, unmasked server-to-client text frame (RFC 6455 §5.2: FIN, opcode 1, no mask).</summary>
    private void AppendTextFrame(ReadOnlySpan<byte> payload)
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

    /// <summary>
    /// Writes everything appended since <see cref="BeginBatch"/> in one write, and returns the buffer to the pool. With
    /// the write order free and a sink that takes the bytes at once (the common case), this is synchronous: no state
    /// machine, no lock.
    /// </summary>
    private ValueTask FlushBatch() => EnterWrite() is { } turn ? FlushBatchAfterAsync(turn) : WriteBatch();

    private async ValueTask FlushBatchAfterAsync(Task turn)
    {
        await turn.ConfigureAwait(false);
        await WriteBatch().ConfigureAwait(false);
    }

    /// <summary>
    /// Holding the write order: the batch and the frames kept aside for it in one write; the order is released when it
    /// completes. Nothing is written once our close frame has gone (RFC 6455 §5.5.1): a batch built meanwhile is dropped.
    /// </summary>
    private ValueTask WriteBatch()
    {
        byte[]? buffer = null;
        ValueTask write;
        try
        {
            var (aside, asideCount, closeInAside) = EndBatching();
            if (aside is not null)
            {
                Append(ref _buffer, ref _count, aside.AsSpan(0, asideCount));
                ArrayPool<byte>.Shared.Return(aside);
            }

            int count;
            (buffer, count) = (_buffer, _count);
            (_buffer, _count) = (null, 0);
            if (_closeSent)
            {
                count = 0;
            }

            // Set before the bytes go: the order is held until the write completes, so the next holder sees it.
            _closeSent |= closeInAside && count > 0;
            write = count > 0 ? _sink.WriteAsync(buffer.AsMemory(0, count)) : ValueTask.CompletedTask;
        }
        catch
        {
            // Whatever threw, the order is given back (a pass that threw before it copied the batch leaves _buffer to
            // AbandonBatch, which returns it).
            EndWrite(buffer);
            throw;
        }

        if (!write.IsCompleted)
        {
            return EndWriteAsync(write, buffer);
        }

        try
        {
            write.GetAwaiter().GetResult();
        }
        finally
        {
            EndWrite(buffer);
        }

        return ValueTask.CompletedTask;
    }

    private async ValueTask EndWriteAsync(ValueTask write, byte[]? buffer)
    {
        try
        {
            await write.ConfigureAwait(false);
        }
        finally
        {
            EndWrite(buffer);
        }
    }

    private void EndWrite(byte[]? buffer)
    {
        if (buffer is not null)
        {
            // Idle sockets hold no send buffer: that is most of the memory of a quiet connection.
            ArrayPool<byte>.Shared.Return(buffer);
        }

        ExitWrite();
    }

    /// <summary>
    /// Takes the write order: null when it is held at once (no other write holds or waits for it), else the task that
    /// completes when it is this writer's turn. Every caller releases it with <see cref="ExitWrite"/>, once.
    /// </summary>
    /// <remarks>
    /// <c>_writers</c> counts the writes that hold the order or wait for it. The one that moves it from 0 to 1 holds it,
    /// with one interlocked increment and no lock (the semaphore it replaced took a monitor in its wait and its release);
    /// any other is counted first and then waits on <c>_writeTurn</c>, to which the holder's exit gives one turn whenever
    /// the count says a writer waits. So one writer at a time holds the order: a turn is given only to a counted waiter,
    /// and while one is counted nobody takes the order at once. No waiter is stranded: it is counted before the holder's
    /// exit can look, and a turn given before its wait begins is kept by the semaphore. Waiters go in the order their
    /// waits began (a <see cref="SemaphoreSlim"/>'s async waiters are first in, first out), as with the semaphore this
    /// replaced, and a newcomer never overtakes one.
    /// Nobody gives up waiting (no timeout, no token): the count relies on it.
    /// </remarks>
    private Task? EnterWrite() => Interlocked.Increment(ref _writers) == 1 ? null : WriteTurn().WaitAsync();

    private void ExitWrite()
    {
        if (Interlocked.Decrement(ref _writers) > 0)
        {
            WriteTurn().Release();
        }
    }

    /// <summary>Made on the first contended write: most sockets never need it, and an idle one holds none.</summary>
    private SemaphoreSlim WriteTurn() =>
        Volatile.Read(ref _writeTurn) ?? Interlocked.CompareExchange(ref _writeTurn, new SemaphoreSlim(0), null) ?? _writeTurn!;

    /// <summary>
    /// A frame the WebSocket writes itself (ping, pong, close), whole, from any thread: kept aside while a pass
    /// builds its batch (it goes out at the end of that write), else written in turn with the passes' writes.
    /// Nothing follows our close frame (RFC 6455 §5.5.1; the README promises no ping or pong after it): a frame (ping,
    /// pong, a second close) is dropped when a close joined a batch or the write order before it, and again when its
    /// write's turn comes after the close was written.
    /// </summary>
    internal ValueTask WriteOwnFrameAsync(ReadOnlyMemory<byte> frame) => WriteOwnFrameAsync(frame, ping: false);

    /// <summary>As above; the sweep's <paramref name="ping"/> also stands down when a close joined the order while it waited.</summary>
    private ValueTask WriteOwnFrameAsync(ReadOnlyMemory<byte> frame, bool ping)
    {
        // The WebSocket writes each of its frames whole, so the first byte is the frame's: FIN + close.
        var close = !frame.IsEmpty && frame.Span[0] == CloseFrameFirstByte;
        lock (_asideLock)
        {
            if (_closeWritten)
            {
                return ValueTask.CompletedTask;
            }

            _closeWritten = close;
            if (_batching)
            {
                Append(ref _aside, ref _asideCount, frame.Span);
                _closeInAside |= close;
                return ValueTask.CompletedTask;
            }
        }

        return WriteThroughAsync(frame, close, ping);
    }

    /// <param name="close">The bytes end with our close frame: once they are written, nothing else is.</param>
    /// <param name="ping">A keep-alive ping, pointless once a close is on its way even if it could still go first.</param>
    private async ValueTask WriteThroughAsync(ReadOnlyMemory<byte> frame, bool close, bool ping = false)
    {
        if (EnterWrite() is { } turn)
        {
            await turn.ConfigureAwait(false);
        }

        try
        {
            if (_closeSent || (ping && CloseAdmitted()))
            {
                // Our close frame took the write order while this one waited for it (or, for a ping, joined it).
                return;
            }

            _closeSent = close;
            await _sink.WriteAsync(frame).ConfigureAwait(false);
        }
        finally
        {
            ExitWrite();
        }
    }

    private bool CloseAdmitted()
    {
        lock (_asideLock)
        {
            return _closeWritten;
        }
    }

    /// <summary>An abandoned batch's frames kept aside, written on their own; the buffer goes back after.</summary>
    private async Task WriteAsideAsync(byte[] aside, int count, bool closeInAside)
    {
        try
        {
            await WriteThroughAsync(aside.AsMemory(0, count), closeInAside).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // The connection is gone: the receive side sees it end.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(aside);
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
