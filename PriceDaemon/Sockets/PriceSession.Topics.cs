using PriceDaemon.Push;

namespace PriceDaemon.Sockets;

/// <summary>Topic subscriptions: last-value streams on the same per-socket slots and conflation as prices.</summary>
internal sealed partial class PriceSession
{
    /// <summary>
    /// Subscribes to (or drops) the topics in <see cref="_keys"/>. A topic counts as one subscription against the
    /// connection's and the user's limits; one that is not configured, or that anonymous sockets may not read, is
    /// rejected by name in the answer, as an unknown instrument is.
    /// </summary>
    private void HandleTopics(bool subscribe)
    {
        var rejected = new List<(string Key, string Code)>();
        List<Pipeline.Subscription>? added = null;
        var topics = _services.Topics;
        foreach (var name in _keys)
        {
            if (topics is null || !topics.TryGet(name, out var id, out var allowAnonymous))
            {
                rejected.Add((name, ErrorCodes.UnknownTopic));
                continue;
            }

            if (!subscribe)
            {
                if (_topics is not null && _topics.Remove(id, out var subscription))
                {
                    topics.Unsubscribe(subscription);
                    subscription.MarkRemoved();
                    _sender.Remove(subscription);
                    _client.User.RemoveSubscriptions(1);
                }

                continue;
            }

            if (_client.Subject is null && !allowAnonymous)
            {
                rejected.Add((name, ErrorCodes.TopicForbidden));
                continue;
            }

            _topics ??= [];
            if (_topics.ContainsKey(id))
            {
                continue;
            }

            if (HeldCount >= _services.Limits.MaxSubscriptionsPerConnection || !_client.User.TryAddSubscription())
            {
                rejected.Add((name, ErrorCodes.SubscriptionLimit));
                continue;
            }

            var created = _sender.Add(id, topics);
            _topics.Add(id, created);
            topics.Subscribe(created);
            (added ??= []).Add(created);
        }

        Volatile.Write(ref _subscriptionCount, HeldCount);
        var held = _topics is null || topics is null ? [] : _topics.Keys.Select(topics.Name).ToList();
        EnqueueControl(PushFrames.TopicsSubscribed(subscribe ? "subscribe" : "unsubscribe", held, rejected));
        // After the answer, as a price snapshot is: the client learns it is subscribed before the first value.
        // Listed first (above), offered the current value second: a value set in between reaches it either way.
        foreach (var subscription in added ?? [])
        {
            topics!.OfferCurrent(subscription);
        }
    }

    /// <summary>The end of the receive loop: every topic subscription is dropped with the prices.</summary>
    private void ReleaseTopics()
    {
        if (_topics is null || _services.Topics is not { } topics)
        {
            return;
        }

        foreach (var subscription in _topics.Values)
        {
            topics.Unsubscribe(subscription);
            subscription.MarkRemoved();
        }

        _client.User.RemoveSubscriptions(_topics.Count);
        _topics.Clear();
    }
}
