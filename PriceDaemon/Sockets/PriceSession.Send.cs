using System.Net.WebSockets;

namespace PriceDaemon.Sockets;

/// <summary>
/// The send side. There is no send loop per socket: fan-out and the receive loop put work on <c>_ready</c>
/// and call <see cref="ScheduleSend"/>, and a <see cref="SendPump"/> thread runs a pass that appends all of
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

        if (_ready.Reader.Completion.IsCompleted)
        {
            // Closing, and everything queued before the close is out: the close frame is the last thing sent.
            _sendEnded = true;
            _ = CloseOutputAsync();
            return;
        }

        // Release the session (a full fence), then look again: work that arrived after this pass's last read
        // found the flag still set and did not queue it, a batch may have stopped at MaxBatchBytes, and a
        // close may have been requested since the check above.
        Interlocked.Exchange(ref _sendScheduled, 0);
        if (_ready.Reader.Count > 0 || _ready.Reader.Completion.IsCompleted)
        {
            ScheduleSend();
        }
    }

    /// <summary>Appends everything ready to one batch and writes it; synchronous unless the socket pushes back.</summary>
    private ValueTask WriteReady(BatchingStream stream)
    {
        var reader = _ready.Reader;
        // Once a close is requested prices stop, but queued control frames (the error that explains the
        // close) still go out ahead of the close frame.
        var closing = Volatile.Read(ref _closeRequested) != 0;
        stream.BeginBatch();
        var sent = 0;
        long oldest = long.MaxValue;
        while (stream.BufferedBytes < MaxBatchBytes && reader.TryRead(out var item))
        {
            if (ReferenceEquals(item, _controlMarker))
            {
                if (_control.TryDequeue(out var control))
                {
                    Interlocked.Decrement(ref _controlCount);
                    stream.AppendTextFrame(control);
                }
            }
            else if (!closing && item.Take() is { } frame && !item.Removed && frame.Seq > item.LastSentSeq)
            {
                // Snapshot and live frames race for the same mailbox; the sequence check keeps an older
                // price from ever following a newer one.
                item.LastSentSeq = frame.Seq;
                stream.AppendTextFrame(frame.Utf8);
                sent++;
                if (!item.TakeSnapshotFlag() && frame.ReceivedTimestamp != 0 && frame.ReceivedTimestamp < oldest)
                {
                    oldest = frame.ReceivedTimestamp;
                }
            }
        }

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
    /// takes only what was queued when it began, so a socket that fan-out keeps refilling cannot hold a send
    /// thread; the rest goes in the next pass.
    /// </summary>
    private async ValueTask SendUnbatchedAsync()
    {
        var reader = _ready.Reader;
        var closing = Volatile.Read(ref _closeRequested) != 0;
        for (var budget = reader.Count; budget > 0 && reader.TryRead(out var item); budget--)
        {
            byte[] payload;
            long received = 0;
            if (ReferenceEquals(item, _controlMarker))
            {
                if (!_control.TryDequeue(out payload!))
                {
                    continue;
                }

                Interlocked.Decrement(ref _controlCount);
            }
            else if (!closing && item.Take() is { } frame && !item.Removed && frame.Seq > item.LastSentSeq)
            {
                item.LastSentSeq = frame.Seq;
                payload = frame.Utf8;
                received = item.TakeSnapshotFlag() || frame.ReceivedTimestamp == 0 ? long.MaxValue : frame.ReceivedTimestamp;
            }
            else
            {
                continue;
            }

            Volatile.Write(ref _writeStartedAt, Math.Max(1, _services.Time.GetTimestamp()));
            await _socket.SendAsync(payload.AsMemory(), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None).ConfigureAwait(false);
            if (received != 0)
            {
                Sent(1, received);
            }
        }
    }

    private async Task CloseOutputAsync()
    {
        try
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                Volatile.Write(ref _writeStartedAt, Math.Max(1, _services.Time.GetTimestamp()));
                await _socket.CloseOutputAsync(_closeStatus, _closeReason, CancellationToken.None).ConfigureAwait(false);
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
