using System.Buffers;
using System.Net.WebSockets;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Sockets;

internal sealed partial class PriceSession
{
    private async Task ReceiveLoopAsync()
    {
        var limit = _services.Limits.MaxMessageBytes;
        try
        {
            while (true)
            {
                // An empty read waits for the next frame's header and takes none of its payload, so an idle
                // socket holds no receive buffer: that is most of what 20,000 quiet connections would keep.
                var result = await _socket.ReceiveAsync(Memory<byte>.Empty).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    // The peer started the close: answer it (the send side writes our close frame).
                    BeginClose(_socket.CloseStatus ?? WebSocketCloseStatus.NormalClosure, "");
                    return;
                }

                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    // Refused on its header: nothing of it is read.
                    EnqueueControl(ControlFrames.Error(ErrorCodes.InvalidMessage, "binary frames are not supported; send JSON text frames"));
                    BeginClose(WebSocketCloseStatus.InvalidMessageType, "binary frames are not supported");
                    return;
                }

                var buffer = ArrayPool<byte>.Shared.Rent(InitialReceiveBytes);
                var count = 0;
                try
                {
                    while (!result.EndOfMessage)
                    {
                        if (count >= limit)
                        {
                            EnqueueControl(ControlFrames.Error(ErrorCodes.MessageTooLarge, $"messages are limited to {limit} bytes"));
                            BeginClose(WebSocketCloseStatus.MessageTooBig, "message too large");
                            return;
                        }

                        if (count == buffer.Length)
                        {
                            var larger = ArrayPool<byte>.Shared.Rent(Math.Min(limit, count * 4));
                            buffer.AsSpan(0, count).CopyTo(larger);
                            ArrayPool<byte>.Shared.Return(buffer);
                            buffer = larger;
                        }

                        var room = Math.Min(buffer.Length, limit) - count;
                        result = await _socket.ReceiveAsync(buffer.AsMemory(count, room)).ConfigureAwait(false);
                        count += result.Count;
                        if (result.MessageType == WebSocketMessageType.Close)
                        {
                            BeginClose(_socket.CloseStatus ?? WebSocketCloseStatus.NormalClosure, "");
                            return;
                        }
                    }

                    MessageReceived();
                    Handle(buffer.AsSpan(0, count));
                    // The parsed keys are garbage once handled; kept, a socket idle after subscribing to five
                    // instruments would hold five key strings (~320 B) for its whole life.
                    _keys.Clear();
                    // The emptied list's array too (~0.1 KiB): most sockets send a message or two and then only listen.
                    _keys.Capacity = 0;
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            // A reset connection, or an abort we started: nothing more will arrive.
            if (!IsClosing)
            {
                SocketLog.SocketError(_logger, Id, Remote, "receive", ex.Message);
            }

            BeginClose(WebSocketCloseStatus.EndpointUnavailable, "");
        }
        catch (Exception ex)
        {
            // A bug, not a socket fault: the session's run faults with it once it has ended (nobody awaits this loop).
            Volatile.Write(ref _fault, ex);
            Abort();
        }
        finally
        {
            try
            {
                ReleaseSubscriptions();
            }
            catch (Exception ex)
            {
                Interlocked.CompareExchange(ref _fault, ex, null);
            }

            SideEnded(ReceiveEnded);
        }
    }

    /// <summary>
    /// The end of the receive loop, the owner of the subscriptions: nothing is handled after it, so every
    /// subscription leaves the index (fan-out stops marking it), the user's limits and the feed's interest
    /// (Upstox may let go of what only this client wanted).
    /// </summary>
    private void ReleaseSubscriptions()
    {
        foreach (var (instrumentId, subscription) in _subscriptions)
        {
            _services.Index.Remove(subscription);
            subscription.MarkRemoved();
            _services.Upstream.Release(instrumentId);
        }

        _client.User.RemoveSubscriptions(_subscriptions.Count);
        _subscriptions.Clear();
        ReleaseTopics();
        ReleaseDepth();
        ReleaseCandles();
        ReleaseAlerts();
        Volatile.Write(ref _subscriptionCount, 0);
    }

    private void Handle(ReadOnlySpan<byte> message)
    {
        if (IsClosing)
        {
            // Closing: what the client still sends changes nothing and earns no answer.
            return;
        }

        ClientMessageParser.Error? error;
        ClientAction action;
        bool? timing = null;
        string? req = null;
        try
        {
            error = ClientMessageParser.Parse(message, out action, _keys, out timing, out _candleRequest, out req);
        }
        catch (Exception ex)
        {
            // Last resort for a parser bug the fuzz tests missed. Parsing only reads the bytes, so nothing has changed
            // and the connection can go on; the message counts as a bad one, so a client that keeps sending it is
            // closed by the budget. One line without the stack, once per connection: any client could otherwise
            // write a line per message, and the budget can be turned off.
            if (!_unreadableLogged)
            {
                _unreadableLogged = true;
                LogUnreadableMessage(Id, Remote, message.Length, ex.GetType().Name, ex.Message);
            }

            action = default;
            error = new(ErrorCodes.InvalidMessage, "the message could not be read");
        }

        if (error is { } e)
        {
            Interlocked.Increment(ref _services.Metrics.ClientErrors);
            EnqueueControl(ControlFrames.WithReq(ControlFrames.Error(e.Code, e.Message), req));
            if (OverBadMessageBudget())
            {
                LogTooManyBadMessages(Id, Remote, _services.Limits.MaxBadMessagesPerMinute);
                BeginClose(WebSocketCloseStatus.PolicyViolation, "too many bad messages");
            }

            return;
        }

        if (action == ClientAction.Ack)
        {
            HandleAck();
            return;
        }

        // Not subscription changes: bounded by Alerts:MaxPerUser and the alert writer's queue instead.
        if (action is ClientAction.AlertCreate or ClientAction.AlertList or ClientAction.AlertDelete)
        {
            HandleAlert(action, message, req);
            return;
        }

        // Counted per user, not per connection: opening more sockets buys no more changes.
        if (!_client.User.TryChangeSubscriptions(out var retryAfter))
        {
            Interlocked.Increment(ref _services.Metrics.ClientErrors);
            EnqueueControl(RateLimitedFrame(retryAfter));
            return;
        }

        if (action is ClientAction.SubscribeVolumeAlerts or ClientAction.UnsubscribeVolumeAlerts)
        {
            HandleVolumeAlerts(action == ClientAction.SubscribeVolumeAlerts);
            return;
        }

        if (action is ClientAction.SubscribeTopics or ClientAction.UnsubscribeTopics)
        {
            HandleTopics(action == ClientAction.SubscribeTopics);
            return;
        }

        if (action is ClientAction.SubscribeDepth or ClientAction.UnsubscribeDepth or ClientAction.SubscribeBook or ClientAction.UnsubscribeBook)
        {
            HandleDepth(action is ClientAction.SubscribeDepth or ClientAction.SubscribeBook, action is ClientAction.SubscribeBook or ClientAction.UnsubscribeBook);
            return;
        }

        if (action is ClientAction.SubscribeCandles or ClientAction.UnsubscribeCandles)
        {
            HandleCandles(action == ClientAction.SubscribeCandles, _candleRequest);
            return;
        }

        ApplyTiming(timing);
        var rejected = new List<(string Key, string Code)>();
        List<string>? unknown = null;
        List<Subscription>? added = null;
        var instruments = _services.Instruments;
        foreach (var key in _keys)
        {
            if (!TryResolve(key, rejected, ref unknown, out var instrument))
            {
                continue;
            }

            if (action == ClientAction.Unsubscribe)
            {
                if (_subscriptions.Remove(instrument.Id, out var subscription))
                {
                    _services.Index.Remove(subscription);
                    subscription.MarkRemoved();
                    _sender.Remove(subscription);
                    _client.User.RemoveSubscriptions(1);
                    _services.Upstream.Release(instrument.Id);
                }

                continue;
            }

            if (_subscriptions.ContainsKey(instrument.Id))
            {
                continue;
            }

            // The connection's own cap first, then the user's across connections.
            if (HeldCount >= _services.Limits.MaxSubscriptionsPerConnection || !_client.User.TryAddSubscription())
            {
                rejected.Add((key, ErrorCodes.SubscriptionLimit));
                continue;
            }

            // The feed's own cap (Upstox allows so many instruments per connection): refused upstream, not by us.
            if (!_services.Upstream.Acquire(instrument.Id))
            {
                _client.User.RemoveSubscriptions(1);
                rejected.Add((key, Feeds.IUpstreamInterest.LimitCode));
                continue;
            }

            var created = _sender.Add(instrument.Id);
            _subscriptions.Add(instrument.Id, created);
            // Index first, cache second: an update emitted in between is either fanned out to us or
            // already in the cache, so the snapshot below can never miss the newest price.
            _services.Index.Add(created);
            (added ??= []).Add(created);
        }

        Volatile.Write(ref _subscriptionCount, HeldCount);
        ReportUnknown(unknown);

        var actionName = action == ClientAction.Subscribe ? "subscribe" : "unsubscribe";
        EnqueueControl(ControlFrames.Subscribed(actionName, _subscriptions.Values.Select(s => instruments[s.InstrumentId].Key), rejected));
        if (added is null)
        {
            return;
        }

        LogSubscribed(Id, added.Count, _subscriptions.Count);
        // While the feed is down a cached price is last known, not live: the snapshot says so.
        var stale = !_services.FeedStatus.IsConnected;
        using var scope = _services.Cache.Read();
        foreach (var subscription in added)
        {
            if (_services.Cache.Get(subscription.InstrumentId) is not { } snapshot)
            {
                continue;
            }

            if (stale)
            {
                // A copy of its own: the subscription may hold it until a pass runs.
                subscription.OfferSnapshot(snapshot.AsStale());
            }
            else
            {
                // The cached frame is pooled and must not be held: the pass reads it (or a newer one) from the cache.
                subscription.OfferCachedSnapshot(snapshot);
            }
        }
    }

    /// <summary>The instrument of <paramref name="key"/>; an unknown one is rejected by name in the ack and kept for <see cref="ReportUnknown"/>.</summary>
    private bool TryResolve(string key, List<(string Key, string Code)> rejected, ref List<string>? unknown, out Instruments.Instrument instrument)
    {
        if (_services.Instruments.TryGet(key, out instrument))
        {
            return true;
        }

        rejected.Add((key, ErrorCodes.UnknownInstrument));
        (unknown ??= []).Add(key);
        return false;
    }

    /// <summary>Unknown keys are reported twice on purpose: in the ack, and in an error frame for clients of the original protocol.</summary>
    private void ReportUnknown(List<string>? unknown)
    {
        if (unknown is not null)
        {
            Interlocked.Increment(ref _services.Metrics.ClientErrors);
            EnqueueControl(ControlFrames.Error(ErrorCodes.UnknownInstrument, $"{unknown.Count} unknown instrument key(s)", unknown));
        }
    }

    /// <summary>
    /// An ack takes the ids out of the user's inbox, for every socket of the user: they are not replayed again.
    /// The answer names the ids that were unacked; ids unknown or already acked are left out, not an error.
    /// </summary>
    private void HandleAck()
    {
        if (_client.Subject is not { } subject || _services.Inbox is not { } inbox)
        {
            // An ack that cannot mean anything here counts as a bad message: a loop of them is closed like any other.
            Interlocked.Increment(ref _services.Metrics.ClientErrors);
            EnqueueControl(ControlFrames.Error(ErrorCodes.NotificationsUnavailable, _client.Subject is null
                ? "notifications are for signed-in users (Auth:Mode=Jwt); this socket has no user"
                : "notifications are not enabled on this daemon (Push:PublisherKey)"));
            if (OverBadMessageBudget())
            {
                LogTooManyBadMessages(Id, Remote, _services.Limits.MaxBadMessagesPerMinute);
                BeginClose(WebSocketCloseStatus.PolicyViolation, "too many bad messages");
            }

            return;
        }

        if (OverAckBudget(out var retryAfter))
        {
            Interlocked.Increment(ref _services.Metrics.ClientErrors);
            EnqueueControl(RateLimitedFrame(retryAfter, "too many acks; nothing was acked, those notifications come again on the next connect"));
            return;
        }

        EnqueueControl(Push.PushFrames.Acked(inbox.Ack(subject, _keys)));
    }
}
