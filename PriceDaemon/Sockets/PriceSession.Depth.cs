using PriceDaemon.Pipeline;

namespace PriceDaemon.Sockets;

/// <summary>The <c>depth</c> and <c>book</c> channels: last-value streams on the same per-socket slots and conflation as prices.</summary>
internal sealed partial class PriceSession
{
    /// <summary>Depth and book subscriptions held: they count against the limits as prices and topics do.</summary>
    private int DepthCount => (_depth?.Count ?? 0) + (_book?.Count ?? 0);

    /// <summary>
    /// Subscribes to (or drops) the depth or book of the instruments in <see cref="_keys"/>. Each (instrument, channel)
    /// counts as one subscription against the connection's and the user's limits, and as one client of that mode
    /// upstream (Upstox serves depth only in <c>full</c> mode and the 30-level book only in <c>full_d30</c>, each with
    /// its own cap). The answer names the channel; the newest cached book follows it, labelled stale while the feed is down.
    /// </summary>
    private void HandleDepth(bool subscribe, bool book)
    {
        var channelName = book ? "book" : "depth";
        if (_services.Depth is not { } stage)
        {
            EnqueueControl(ControlFrames.Error(ErrorCodes.UnknownChannel, $"the {channelName} channel is not available on this daemon"));
            return;
        }

        var channel = book ? stage.Book : stage.Depth;
        var held = book ? (_book ??= []) : (_depth ??= []);
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

            var id = instrument.Id;
            if (!subscribe)
            {
                if (held.Remove(id, out var subscription))
                {
                    Drop(channel, subscription, book);
                }

                continue;
            }

            if (held.ContainsKey(id))
            {
                continue;
            }

            if (HeldCount >= _services.Limits.MaxSubscriptionsPerConnection || !_client.User.TryAddSubscription())
            {
                rejected.Add((key, ErrorCodes.SubscriptionLimit));
                continue;
            }

            if (!_services.Upstream.AcquireDepth(id, book))
            {
                _client.User.RemoveSubscriptions(1);
                rejected.Add((key, Feeds.IUpstreamInterest.LimitCode));
                continue;
            }

            var created = _sender.Add(id, channel);
            held.Add(id, created);
            channel.Subscribe(created);
            (added ??= []).Add(created);
        }

        Volatile.Write(ref _subscriptionCount, HeldCount);
        ReportUnknown(unknown);

        EnqueueControl(ControlFrames.Ack(subscribe ? "subscribe" : "unsubscribe", channelName, "instruments", held.Keys.Select(id => instruments[id].Key), "instrument_key", rejected));
        // After the answer, as for prices: listed first, offered the cached book second, so one emitted in between
        // reaches the socket either way and the send pass writes whichever is newer.
        var stale = !_services.FeedStatus.IsConnected;
        foreach (var subscription in added ?? [])
        {
            if (channel.Get(subscription.InstrumentId) is { } snapshot)
            {
                subscription.OfferSnapshot(stale ? snapshot.AsStale() : snapshot);
            }
        }
    }

    private void Drop(DepthChannel channel, Subscription subscription, bool book)
    {
        channel.Unsubscribe(subscription);
        subscription.MarkRemoved();
        _sender.Remove(subscription);
        _client.User.RemoveSubscriptions(1);
        _services.Upstream.ReleaseDepth(subscription.InstrumentId, book);
    }

    /// <summary>The end of the receive loop: every depth and book subscription is handed back with the prices.</summary>
    private void ReleaseDepth()
    {
        if (_services.Depth is not { } stage)
        {
            return;
        }

        foreach (var (held, book) in new[] { (_depth, false), (_book, true) })
        {
            if (held is null)
            {
                continue;
            }

            var channel = book ? stage.Book : stage.Depth;
            foreach (var subscription in held.Values)
            {
                channel.Unsubscribe(subscription);
                subscription.MarkRemoved();
                _services.Upstream.ReleaseDepth(subscription.InstrumentId, book);
            }

            _client.User.RemoveSubscriptions(held.Count);
            held.Clear();
        }
    }
}
