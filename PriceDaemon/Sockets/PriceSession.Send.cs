using System.Net.WebSockets;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Sockets;

/// <summary>
/// The send side. There is no send loop per socket: fan-out marks subscriptions ready, the receive loop
/// queues control frames, both call <see cref="ScheduleSend"/>, and a <see cref="SendPump"/> thread runs a
/// pass that appends all of it into one buffer and writes it. A write that cannot complete at once (the
/// peer is slow) finishes on the thread pool, and the session is not queued again until it has.
/// </summary>
internal sealed partial class PriceSession : ISendPass
{
    // A batch stops growing here so one busy socket cannot pin a large buffer; the rest goes in the next pass.
    private const int MaxBatchBytes = 64 * 1024;

    // 1 from the moment the session is queued on a pump until its pass, and any write it started, is over;
    // so passes never overlap and a session is queued at most once. Stays 1 once the send side has ended.
    private int _sendScheduled;
    private bool _sendEnded;

    // Control frames taken by a pass, oldest first, but not yet written (a batch stopped at MaxBatchBytes).
    // Only the pass in progress touches it.
    private ControlFrame? _controlCarry;

    // The word of ready marks the next pass starts at. Only the pass in progress touches it.
    private int _nextWord;

    // By slot, what each subscription last got. Only the pass in progress touches it.
    private SentState[] _sent = [];
    private readonly TaskCompletionSource _sendDone = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the close frame is out or the send side failed; never faults.</summary>
    private Task SendCompletion => _sendDone.Task;

    /// <summary>
    /// Callers publish their work first with a full fence (a mark, a push, a CAS), so the plain read of the
    /// flag cannot miss a pass's release in <see cref="EndPass"/>: one of the two always sees the other.
    /// </summary>
    private void ScheduleSend()
    {
        if (Volatile.Read(ref _sendScheduled) == 0 && Interlocked.CompareExchange(ref _sendScheduled, 1, 0) == 0)
        {
            _services.SendPump.Schedule(this, Id);
        }
    }

    /// <summary>Runs on a pump thread; never throws and never blocks.</summary>
    void ISendPass.RunSendPass()
    {
        ValueTask pass;
        try
        {
            pass = _stream is null ? SendUnbatchedAsync() : WriteReady(_stream);
        }
        catch (Exception ex)
        {
            pass = ValueTask.FromException(ex);
        }

        if (pass.IsCompletedSuccessfully)
        {
            EndPass();
        }
        else
        {
            _ = FinishPassAsync(pass);
        }
    }

    private async Task FinishPassAsync(ValueTask pass)
    {
        try
        {
            await pass.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            FailSend(ex);
            return;
        }

        EndPass();
    }

    private void EndPass()
    {
        Volatile.Write(ref _writeStartedAt, 0);
        if (_sendEnded)
        {
            return;
        }

        if (IsClosing && Volatile.Read(ref _controlCount) == 0)
        {
            // Closing, and every control frame queued before the close (the error that explains it) is out;
            // prices still queued are dropped. The close frame is the last thing sent.
            _sendEnded = true;
            _ = CloseOutputAsync();
            return;
        }

        // Release the session (a full fence), then look again: work queued after this pass took it found the
        // flag still set and did not queue the session, a batch may have stopped at MaxBatchBytes, and a
        // close may have been requested since the check above.
        Interlocked.Exchange(ref _sendScheduled, 0);
        if (_controlCarry is not null || Volatile.Read(ref _controlHead) is not null || _ready.Any() || IsClosing)
        {
            ScheduleSend();
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
    /// The frame to write for a marked slot, or null: the instrument's cached frame (or the snapshot offered on
    /// subscribe, when the cache has nothing newer) if the subscription is live and the frame is newer than
    /// what the socket last got. The sequence check also keeps an older price from ever following a newer one.
    /// </summary>
    private byte[]? Price(Subscription?[] slots, int slot, ref long oldest)
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

        var frame = _services.Cache.Get(item.InstrumentId);
        var fromSnapshot = false;
        if (item.TakeSnapshot() is { } snapshot && (frame is null || snapshot.Seq >= frame.Seq))
        {
            // The same price labelled stale while the feed is down; or a cache that was just replaced.
            frame = snapshot;
            fromSnapshot = true;
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

        return frame.Utf8;
    }

    /// <summary>The last sequence written for the subscription in a slot; owned by the send side.</summary>
    private record struct SentState(Subscription? Subscription, long Seq);

    /// <summary>Appends everything ready to one batch and writes it; synchronous unless the socket pushes back.</summary>
    private ValueTask WriteReady(BatchingStream stream)
    {
        // Once a close is requested prices stop, but queued control frames (the error that explains the
        // close) still go out ahead of the close frame.
        var closing = IsClosing;
        stream.BeginBatch();
        var control = TakeControl();
        while (control is not null && stream.BufferedBytes < MaxBatchBytes)
        {
            Interlocked.Decrement(ref _controlCount);
            stream.AppendTextFrame(control.Utf8);
            control = control.Next;
        }

        _controlCarry = control;
        var sent = 0;
        long oldest = long.MaxValue;
        if (!closing && control is null)
        {
            AppendPrices(stream, ref sent, ref oldest);
        }

        var flush = stream.FlushBatchAsync(CancellationToken.None);
        if (!flush.IsCompletedSuccessfully)
        {
            // Only a write the socket did not take at once can stall, so only such a write is timed (one clock
            // read per write saved). Set before the continuation exists: EndPass, which clears it, runs after.
            Volatile.Write(ref _writeStartedAt, Math.Max(1, _services.Time.GetTimestamp()));
            return AfterFlushAsync(flush, sent, oldest);
        }

        Sent(sent, oldest);
        return ValueTask.CompletedTask;
    }

    private void AppendPrices(BatchingStream stream, ref int sent, ref long oldest)
    {
        // A pass starts where the last one that filled its batch stopped, so low slots that fan-out keeps
        // marking cannot starve the high ones.
        var words = _ready.WordCount;
        for (var i = 0; i < words; i++)
        {
            var word = (_nextWord + i) % words;
            var marks = _ready.Take(word);
            // Read after the marks are taken: the array then holds every subscription that made one (TakeSlot
            // publishes a grown array before the subscription can be offered anything).
            var slots = Volatile.Read(ref _slots);
            while (marks != 0)
            {
                if (stream.BufferedBytes >= MaxBatchBytes)
                {
                    _ready.Return(word, marks);
                    _nextWord = word;
                    return;
                }

                if (Price(slots, ReadySlots.Next(word, ref marks), ref oldest) is { } payload)
                {
                    stream.AppendTextFrame(payload);
                    sent++;
                }
            }
        }
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

    /// <summary>
    /// No batching stream (a transport other than an HTTP/1.1 upgrade): one WebSocket write per frame. A pass
    /// writes only the marks it took, so a socket that fan-out keeps marking cannot hold a send thread; the
    /// rest goes in the next pass.
    /// </summary>
    private async ValueTask SendUnbatchedAsync()
    {
        var closing = IsClosing;
        for (var control = TakeControl(); control is not null; control = control.Next)
        {
            Interlocked.Decrement(ref _controlCount);
            await SendOneAsync(control.Utf8).ConfigureAwait(false);
        }

        if (closing)
        {
            return;
        }

        for (var word = 0; word < _ready.WordCount; word++)
        {
            var marks = _ready.Take(word);
            while (marks != 0)
            {
                // Re-read per frame: the array may have grown while a write was pending.
                var slots = Volatile.Read(ref _slots);
                long oldest = long.MaxValue;
                if (Price(slots, ReadySlots.Next(word, ref marks), ref oldest) is { } payload)
                {
                    await SendOneAsync(payload).ConfigureAwait(false);
                    Sent(1, oldest);
                }
            }
        }
    }

    private ValueTask SendOneAsync(byte[] payload)
    {
        Volatile.Write(ref _writeStartedAt, Math.Max(1, _services.Time.GetTimestamp()));
        return _socket.SendAsync(payload.AsMemory(), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
    }

    /// <summary>A queued control frame: a node of the session's control stack.</summary>
    private sealed class ControlFrame(byte[] utf8)
    {
        public byte[] Utf8 { get; } = utf8;

        public ControlFrame? Next { get; set; }
    }

    private async Task CloseOutputAsync()
    {
        try
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                Volatile.Write(ref _writeStartedAt, Math.Max(1, _services.Time.GetTimestamp()));
                await _socket.CloseOutputAsync(_close!.Status, _close.Reason, CancellationToken.None).ConfigureAwait(false);
            }

            _sendDone.TrySetResult();
        }
        catch (Exception ex)
        {
            FailSend(ex);
        }
        finally
        {
            Volatile.Write(ref _writeStartedAt, 0);
        }
    }

    private void FailSend(Exception ex)
    {
        _sendEnded = true;
        Volatile.Write(ref _writeStartedAt, 0);
        // First: the session may already be over (its RunAsync timed out), and then aborting can throw.
        _sendDone.TrySetResult();
        if (ex is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            Interlocked.Increment(ref _services.Metrics.SendErrors);
            LogSocketError(Id, Remote, "send", ex.Message);
        }
        else
        {
            LogSendFailed(Id, Remote, ex);
        }

        try
        {
            Abort();
        }
        catch (ObjectDisposedException)
        {
            // The connection is already gone.
        }
    }
}
