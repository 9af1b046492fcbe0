using System.Net.WebSockets;

namespace PriceDaemon.Sockets;

internal sealed partial class PriceSession
{
    // A batch stops growing here so one busy socket cannot pin a large buffer.
    private const int MaxBatchBytes = 64 * 1024;

    private async Task SendLoopAsync()
    {
        var reader = _ready.Reader;
        var metrics = _services.Metrics;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                // Once a close is requested prices stop, but queued control frames (the error that
                // explains the close) still go out ahead of the close frame.
                var closing = Volatile.Read(ref _closeRequested) != 0;
                _stream?.BeginBatch();
                var sent = 0;
                long oldest = long.MaxValue;
                while (reader.TryRead(out var item))
                {
                    if (ReferenceEquals(item, _controlMarker))
                    {
                        if (_control.TryDequeue(out var control))
                        {
                            Interlocked.Decrement(ref _controlCount);
                            await SendAsync(control).ConfigureAwait(false);
                        }
                    }
                    else if (!closing && item.Take() is { } frame && !item.Removed && frame.Seq > item.LastSentSeq)
                    {
                        // Snapshot and live frames race for the same mailbox; the sequence check keeps
                        // an older price from ever following a newer one.
                        item.LastSentSeq = frame.Seq;
                        await SendAsync(frame.Utf8).ConfigureAwait(false);
                        sent++;
                        if (!item.TakeSnapshotFlag() && frame.ReceivedTimestamp != 0 && frame.ReceivedTimestamp < oldest)
                        {
                            oldest = frame.ReceivedTimestamp;
                        }
                    }

                    if (_stream is not null && _stream.BufferedBytes >= MaxBatchBytes)
                    {
                        break;
                    }
                }

                if (_stream is not null)
                {
                    Volatile.Write(ref _writeStartedAt, Math.Max(1, _services.Time.GetTimestamp()));
                    await _stream.FlushBatchAsync(CancellationToken.None).ConfigureAwait(false);
                    Volatile.Write(ref _writeStartedAt, 0);
                }

                Interlocked.Add(ref metrics.FramesSent, sent);
                if (oldest != long.MaxValue && metrics.SendLatency.Enabled)
                {
                    metrics.SendLatency.Record(_services.Time.GetElapsedTime(oldest).TotalSeconds);
                }
            }

            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                Volatile.Write(ref _writeStartedAt, Math.Max(1, _services.Time.GetTimestamp()));
                await _socket.CloseOutputAsync(_closeStatus, _closeReason, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            Interlocked.Increment(ref metrics.SendErrors);
            LogSocketError(Id, Remote, "send", ex.Message);
            Abort();
        }
        finally
        {
            Volatile.Write(ref _writeStartedAt, 0);
        }
    }

    private ValueTask SendAsync(byte[] frame)
    {
        if (_stream is not null)
        {
            // The hot path: the frame goes into this batch's buffer; the flush writes it.
            _stream.AppendTextFrame(frame);
            return ValueTask.CompletedTask;
        }

        // No batching stream (a transport other than HTTP/1.1 upgrade): one write per frame.
        Volatile.Write(ref _writeStartedAt, Math.Max(1, _services.Time.GetTimestamp()));
        return AwaitUnbatched(_socket.SendAsync(frame.AsMemory(), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None));
    }

    private async ValueTask AwaitUnbatched(ValueTask pending)
    {
        await pending.ConfigureAwait(false);
        Volatile.Write(ref _writeStartedAt, 0);
    }
}
