using System.Net.WebSockets;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Sockets;

/// <summary>
/// The send side. There is no send loop per socket: fan-out and the receive loop push work onto the ready
/// list and call <see cref="ScheduleSend"/>, and a <see cref="SendPump"/> thread runs a pass that appends all of
/// it into one buffer and writes it. A write that cannot complete at once (the peer is slow) finishes on
/// the thread pool, and the session is not queued again until it has.
/// </summary>
internal sealed partial class PriceSession : ISendPass
{
    // A batch stops growing here so one busy socket cannot pin a large buffer; the rest goes in the next pass.
    private const int MaxBatchBytes = 64 * 1024;

    // 1 from the moment the session is queued on a pump until its pass, and any write it started, is over;
    // so passes never overlap and a session is queued at most once. Stays 1 once the send side has ended.
    private int _sendScheduled;
    private bool _sendEnded;

    // Taken from the ready list by a pass, oldest first, but not yet written (a batch stopped at
    // MaxBatchBytes). Only the pass in progress touches it.
    private Subscription? _carry;
    private readonly TaskCompletionSource _sendDone = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the close frame is out or the send side failed; never faults.</summary>
    private Task SendCompletion => _sendDone.Task;

    private void ScheduleSend()
    {
        if (Interlocked.CompareExchange(ref _sendScheduled, 1, 0) == 0)
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

        // Release the session (a full fence), then look again: work pushed after this pass took the list
        // found the flag still set and did not queue the session, a batch may have stopped at MaxBatchBytes,
        // and a close may have been requested since the check above.
        Interlocked.Exchange(ref _sendScheduled, 0);
        if (_carry is not null || Volatile.Read(ref _readyHead) is not null || IsClosing)
        {
            ScheduleSend();
        }
    }

    private void PushReady(Subscription item)
    {
        var head = Volatile.Read(ref _readyHead);
        while (true)
        {
            item.NextReady = head;
            var seen = Interlocked.CompareExchange(ref _readyHead, item, head);
            if (ReferenceEquals(seen, head))
            {
                break;
            }

            head = seen;
        }
    }

    /// <summary>
    /// What an earlier pass left over, or else the whole ready list, oldest first. Leftovers are older than
    /// anything in the list, so taking them alone keeps the order; the list waits for the next pass.
    /// </summary>
    private Subscription? TakeReady()
    {
        if (_carry is { } carry)
        {
            _carry = null;
            return carry;
        }

        var list = Interlocked.Exchange(ref _readyHead, null);

        // Reverse to FIFO. Safe: nothing in a taken list is pushed again before the pass empties its mailbox.
        Subscription? fifo = null;
        while (list is not null)
        {
            var next = list.NextReady;
            list.NextReady = fifo;
            fifo = list;
            list = next;
        }

        return fifo;
    }

    /// <summary>
    /// The payload to write for one ready item, or null: a control frame, or the pending price of a live
    /// subscription that is newer than what the socket last got. Empties the item's mailbox, after which
    /// fan-out may push it again, so its <see cref="Subscription.NextReady"/> must be read before this.
    /// </summary>
    private byte[]? Payload(Subscription item, bool closing, ref long oldest)
    {
        if (item.ControlFrame is { } control)
        {
            Interlocked.Decrement(ref _controlCount);
            return control;
        }

        if (item.Take() is not { } frame || closing || item.Removed || frame.Seq <= item.LastSentSeq)
        {
            return null;
        }

        // Snapshot and live frames race for the same mailbox; the sequence check keeps an older price from
        // ever following a newer one.
        item.LastSentSeq = frame.Seq;
        if (!item.TakeSnapshotFlag() && frame.ReceivedTimestamp != 0 && frame.ReceivedTimestamp < oldest)
        {
            oldest = frame.ReceivedTimestamp;
        }

        return frame.Utf8;
    }

    /// <summary>Appends everything ready to one batch and writes it; synchronous unless the socket pushes back.</summary>
    private ValueTask WriteReady(BatchingStream stream)
    {
        // Once a close is requested prices stop, but queued control frames (the error that explains the
        // close) still go out ahead of the close frame.
        var closing = IsClosing;
        stream.BeginBatch();
        var sent = 0;
        long oldest = long.MaxValue;
        var item = TakeReady();
        while (item is not null)
        {
            var next = item.NextReady;
            item.NextReady = null;
            if (Payload(item, closing, ref oldest) is { } payload)
            {
                stream.AppendTextFrame(payload);
                sent += item.ControlFrame is null ? 1 : 0;
            }

            item = next;
            if (stream.BufferedBytes >= MaxBatchBytes)
            {
                break;
            }
        }

        _carry = item;
        Volatile.Write(ref _writeStartedAt, Math.Max(1, _services.Time.GetTimestamp()));
        var flush = stream.FlushBatchAsync(CancellationToken.None);
        if (!flush.IsCompletedSuccessfully)
        {
            return AfterFlushAsync(flush, sent, oldest);
        }

        Sent(sent, oldest);
        return ValueTask.CompletedTask;
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
    /// writes only what it took from the ready list, so a socket that fan-out keeps refilling cannot hold a
    /// send thread; the rest goes in the next pass.
    /// </summary>
    private async ValueTask SendUnbatchedAsync()
    {
        var closing = IsClosing;
        var item = TakeReady();
        while (item is not null)
        {
            var next = item.NextReady;
            item.NextReady = null;
            long oldest = long.MaxValue;
            if (Payload(item, closing, ref oldest) is { } payload)
            {
                _carry = next; // if this write fails the session ends; if it pends, nothing else runs meanwhile
                Volatile.Write(ref _writeStartedAt, Math.Max(1, _services.Time.GetTimestamp()));
                await _socket.SendAsync(payload.AsMemory(), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None).ConfigureAwait(false);
                _carry = null;
                if (item.ControlFrame is null)
                {
                    Sent(1, oldest);
                }
            }

            item = next;
        }
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
