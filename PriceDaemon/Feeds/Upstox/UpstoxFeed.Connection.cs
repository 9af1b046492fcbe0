using System.Buffers;
using System.Net;
using System.Net.WebSockets;
using System.Runtime.ExceptionServices;
using System.Text.Json;
using System.Threading.Channels;
using PriceDaemon.Feeds.Upstox.Proto;

namespace PriceDaemon.Feeds.Upstox;

internal sealed partial class UpstoxFeed
{
    // Upstox documents no per-request key limit; requests stay well below any frame limit a server may have.
    private const int KeysPerRequest = 500;
    private const int InitialFrameBytes = 64 * 1024;

    private async Task<ConnectionEnd> RunConnectionAsync(Uri wss, string token, UpstoxDecoder decoder, ChannelWriter<Tick> ticks, CancellationToken ct)
    {
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
        socket.Options.CollectHttpResponseDetails = true;
        // Upstox pings an idle connection, but .NET's client answers pings without telling us; our own pings,
        // which must be answered in time, are what notices a connection that died without a FIN.
        socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(15);
        socket.Options.KeepAliveTimeout = TimeSpan.FromSeconds(15);
        using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            connectTimeout.CancelAfter(TimeSpan.FromSeconds(_options.ConnectTimeoutSeconds));
            try
            {
                await socket.ConnectAsync(wss, connectTimeout.Token).ConfigureAwait(false);
            }
            catch (WebSocketException) when (socket.HttpStatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            {
                throw new UpstoxAuthenticationException((int)socket.HttpStatusCode, "the feed WebSocket");
            }
        }

        Interlocked.Increment(ref _metrics.Connects);
        // The host only: the query string holds the single-use code.
        LogConnected(wss.Host, _options.Mode);
        _status.Report(FeedState.Connected, FeedStatus.ConnectedMessage);

        var state = new ConnectionState(_time.GetTimestamp());
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var receive = ReceiveLoopAsync(socket, decoder, ticks, state, stop.Token);
        var reconcile = ReconcileLoopAsync(socket, stop.Token);
        var watchdog = WatchdogAsync(state, stop.Token);
        var first = await Task.WhenAny(receive, reconcile, watchdog).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        if (ct.IsCancellationRequested && socket.State == WebSocketState.Open)
        {
            // Shutdown: a polite close, bounded; the abort below ends it either way.
            using var closeTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            try
            {
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "shutting down", closeTimeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
            {
            }
        }

        socket.Abort();
        try
        {
            await Task.WhenAll(receive, reconcile, watchdog).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException || IsConnectionFault(ex))
        {
            // Each loop ends with the abort or the cancellation; the first one to end says why.
        }

        ct.ThrowIfCancellationRequested();
        if (first.Exception?.InnerException is { } failure)
        {
            if (!IsConnectionFault(failure))
            {
                ExceptionDispatchInfo.Throw(failure);
            }

            LogConnectionLost(failure.GetType().Name, failure.Message);
        }

        return new ConnectionEnd(state.Delivered, state.EndMessage);
    }

    private async Task ReceiveLoopAsync(ClientWebSocket socket, UpstoxDecoder decoder, ChannelWriter<Tick> ticks, ConnectionState state, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(InitialFrameBytes);
        var decoded = new List<Tick>(64);
        var count = 0;
        try
        {
            while (true)
            {
                if (count == buffer.Length)
                {
                    if (count >= _options.MaxFrameBytes)
                    {
                        throw new InvalidDataException($"a feed frame is larger than Feed:Upstox:MaxFrameBytes ({_options.MaxFrameBytes} bytes)");
                    }

                    // Frames fragmented beyond the buffer (Upstox splits large ones) are put together here.
                    var larger = ArrayPool<byte>.Shared.Rent(Math.Min(_options.MaxFrameBytes, count * 2));
                    buffer.AsSpan(0, count).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var room = Math.Min(buffer.Length, _options.MaxFrameBytes) - count;
                var result = await socket.ReceiveAsync(buffer.AsMemory(count, room), ct).ConfigureAwait(false);
                var now = _time.GetTimestamp();
                Volatile.Write(ref state.LastReceived, now);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    LogUpstreamClosed(socket.CloseStatus?.ToString() ?? "none", socket.CloseStatusDescription ?? "");
                    return;
                }

                count += result.Count;
                if (!result.EndOfMessage)
                {
                    continue;
                }

                var length = count;
                count = 0;
                if (result.MessageType == WebSocketMessageType.Text)
                {
                    LogTextFrame(length);
                    continue;
                }

                state.Delivered = true;
                decoded.Clear();
                var response = decoder.Decode(buffer.AsSpan(0, length), now, decoded);
                if (response is null)
                {
                    continue; // logged and counted; the connection stays
                }

                if (response.MarketInfo is { } info)
                {
                    OnMarketInfo(info, state);
                }

                foreach (var tick in decoded)
                {
                    if (!ticks.TryWrite(tick))
                    {
                        await ticks.WriteAsync(tick, ct).ConfigureAwait(false);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Keeps the upstream subscription equal to what <see cref="UpstoxSubscriptions"/> wants, instruments and their modes:
    /// everything at once on connect, then the differences, gathered for <see cref="UpstoxFeedOptions.DebounceMs"/> after
    /// each change. An instrument whose mode changed (a client added its depth or book, or the last one left) gets a
    /// <c>change_mode</c> request, which keeps its place upstream.
    /// </summary>
    private async Task ReconcileLoopAsync(ClientWebSocket socket, CancellationToken ct)
    {
        var upstream = new Dictionary<int, string>();
        var debounce = TimeSpan.FromMilliseconds(_options.DebounceMs);
        while (true)
        {
            _subscriptions.ClearSignal();
            var (desired, nextChange) = _subscriptions.Snapshot();
            var modes = _subscriptions.ModesOf(desired);
            var gone = upstream.Keys.Where(id => !modes.ContainsKey(id)).ToList();
            // Unsubscribe first, then lower or raise modes, then subscribe: near a cap the freed places exist first.
            await SendRequestsAsync(socket, "unsub", null, gone, ct).ConfigureAwait(false);
            foreach (var group in modes.Where(m => upstream.TryGetValue(m.Key, out var was) && was != m.Value).GroupBy(static m => m.Value).OrderBy(static g => g.Key, StringComparer.Ordinal))
            {
                await SendRequestsAsync(socket, "change_mode", group.Key, [.. group.Select(static m => m.Key)], ct).ConfigureAwait(false);
            }

            foreach (var group in modes.Where(m => !upstream.ContainsKey(m.Key)).GroupBy(static m => m.Value).OrderBy(static g => g.Key, StringComparer.Ordinal))
            {
                await SendRequestsAsync(socket, "sub", group.Key, [.. group.Select(static m => m.Key)], ct).ConfigureAwait(false);
            }

            upstream = modes;
            await _subscriptions.WaitForChangeAsync(nextChange, ct).ConfigureAwait(false);
            if (debounce > TimeSpan.Zero)
            {
                await Task.Delay(debounce, _time, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task SendRequestsAsync(ClientWebSocket socket, string method, string? mode, List<int> ids, CancellationToken ct)
    {
        for (var start = 0; start < ids.Count; start += KeysPerRequest)
        {
            var chunk = ids.GetRange(start, Math.Min(KeysPerRequest, ids.Count - start));
            var request = Request(method, mode, chunk.Select(id => _instruments[id].Key));
            // Upstox reads requests only from binary frames (JSON inside); text frames are ignored.
            await socket.SendAsync(request, WebSocketMessageType.Binary, true, ct).ConfigureAwait(false);
            LogRequest(method, mode ?? "", chunk.Count);
        }
    }

    /// <summary><c>{"guid": "...", "method": "sub", "data": {"mode": "ltpc", "instrumentKeys": [...]}}</c>.</summary>
    internal static byte[] Request(string method, string? mode, IEnumerable<string> keys)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("guid", Guid.NewGuid().ToString("N"));
            writer.WriteString("method", method);
            writer.WriteStartObject("data");
            if (mode is not null)
            {
                writer.WriteString("mode", mode);
            }

            writer.WriteStartArray("instrumentKeys");
            foreach (var key in keys)
            {
                writer.WriteStringValue(key);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Declares the feed stalled when nothing has arrived for <c>Feed:StallSeconds</c> while the market is open (or
    /// while its state is unknown), which ends the connection so that the loop reconnects.
    /// </summary>
    private async Task WatchdogAsync(ConnectionState state, CancellationToken ct)
    {
        if (_stallSeconds <= 0)
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, _time, ct).ConfigureAwait(false);
            return;
        }

        var limit = TimeSpan.FromSeconds(_stallSeconds);
        var period = limit / 4;
        while (true)
        {
            await Task.Delay(period, _time, ct).ConfigureAwait(false);
            if (Volatile.Read(ref state.Market) != MarketClosed && _time.GetElapsedTime(Volatile.Read(ref state.LastReceived)) >= limit)
            {
                Interlocked.Increment(ref _metrics.Stalls);
                LogStalled(_stallSeconds);
                state.EndMessage = $"Market data stalled: nothing received for {_stallSeconds} s; reconnecting, showing last known prices";
                return;
            }
        }
    }

    private void OnMarketInfo(MarketInfo info, ConnectionState state)
    {
        var parts = new List<string>();
        var anyOpen = false;
        foreach (var (segment, status) in info.SegmentStatus.OrderBy(static s => s.Key, StringComparer.Ordinal))
        {
            if (_segments.Contains(segment))
            {
                anyOpen |= status == MarketStatus.NormalOpen;
                parts.Add($"{segment} {StatusName(status)}");
            }
        }

        if (parts.Count == 0)
        {
            return; // nothing about our segments: the market state stays as it was
        }

        Volatile.Write(ref state.Market, anyOpen ? MarketOpen : MarketClosed);
        LogMarketInfo(string.Join(", ", parts));
        _status.Report(FeedState.Connected, $"{FeedStatus.ConnectedMessage} — market {string.Join(", ", parts)}");
    }

    internal static string StatusName(MarketStatus status) => status switch
    {
        MarketStatus.PreOpenStart => "pre-open",
        MarketStatus.PreOpenEnd => "pre-open ended",
        MarketStatus.NormalOpen => "open",
        MarketStatus.NormalClose => "closed",
        MarketStatus.ClosingStart => "closing session",
        MarketStatus.ClosingEnd => "closed (closing session ended)",
        _ => $"status {(int)status}",
    };

    private const int MarketUnknown = 0;
    private const int MarketOpen = 1;
    private const int MarketClosed = 2;

    /// <summary>Shared by one connection's loops.</summary>
    private sealed class ConnectionState(long connectedAt)
    {
        public long LastReceived = connectedAt;
        public int Market = MarketUnknown;
        public volatile bool Delivered;
        public volatile string? EndMessage;
    }

    [LoggerMessage(EventId = 116, Level = LogLevel.Information, Message = "Upstox feed connected to {Host}, mode {Mode}")]
    private partial void LogConnected(string host, string mode);

    [LoggerMessage(EventId = 117, Level = LogLevel.Warning, Message = "Upstox connection lost: {Kind}: {Reason}")]
    private partial void LogConnectionLost(string kind, string reason);

    [LoggerMessage(EventId = 118, Level = LogLevel.Warning, Message = "Upstox closed the connection: {CloseStatus} {Description}")]
    private partial void LogUpstreamClosed(string closeStatus, string description);

    [LoggerMessage(EventId = 119, Level = LogLevel.Debug, Message = "Upstox sent a text frame of {Bytes} bytes; ignored (the feed is binary protobuf)")]
    private partial void LogTextFrame(int bytes);

    [LoggerMessage(EventId = 124, Level = LogLevel.Information, Message = "Upstox {Method} {Mode}: {Count} instruments")]
    private partial void LogRequest(string method, string mode, int count);

    [LoggerMessage(EventId = 125, Level = LogLevel.Warning, Message = "Upstox feed stalled: nothing received for {Seconds} s while the market is open; reconnecting")]
    private partial void LogStalled(int seconds);

    [LoggerMessage(EventId = 126, Level = LogLevel.Information, Message = "Upstox market status: {Segments}")]
    private partial void LogMarketInfo(string segments);
}
