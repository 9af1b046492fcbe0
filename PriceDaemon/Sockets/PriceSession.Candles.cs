using PriceDaemon.Candles;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Sockets;

/// <summary>
/// Candle subscriptions: per (instrument, interval), one <c>candles</c> frame of closed bars, then the bar's versions
/// on the same per-socket slots and conflation as prices.
/// </summary>
internal sealed partial class PriceSession
{
    private Dictionary<int, Subscription>? _candles; // by CandleBook key; made on the first candles subscribe

    /// <summary>Subscriptions of every channel this connection holds: what its limit counts.</summary>
    private int HeldCount => _subscriptions.Count + (_topics?.Count ?? 0) + DepthCount + (_candles?.Count ?? 0);

    /// <summary>
    /// Subscribes to (or drops) the bars of <see cref="_keys"/> at one interval. Each (instrument, interval) counts as one
    /// subscription against the connection's and the user's limits. The ack comes first, then each new subscription's
    /// history (queued as a control frame, so it is written before any bar), then its forming bar at the next pass.
    /// </summary>
    private void HandleCandles(bool subscribe, CandleRequest request)
    {
        var book = _services.Candles;
        if (book is null)
        {
            Interlocked.Increment(ref _services.Metrics.ClientErrors);
            EnqueueControl(ControlFrames.Error(ErrorCodes.UnknownChannel, "candles are off on this daemon (Candles:Enabled=false)"));
            return;
        }

        var rejected = new List<(string Key, string Code)>();
        List<Subscription>? added = null;
        var instruments = _services.Instruments;
        foreach (var name in _keys)
        {
            if (!instruments.TryGet(name, out var instrument))
            {
                rejected.Add((name, ErrorCodes.UnknownInstrument));
                continue;
            }

            var key = CandleBook.Key(instrument.Id, request.Interval);
            if (!subscribe)
            {
                if (_candles is not null && _candles.Remove(key, out var subscription))
                {
                    book.Unsubscribe(subscription);
                    subscription.MarkRemoved();
                    _sender.Remove(subscription);
                    _client.User.RemoveSubscriptions(1);
                }

                continue;
            }

            _candles ??= [];
            if (_candles.ContainsKey(key))
            {
                continue;
            }

            if (HeldCount >= _services.Limits.MaxSubscriptionsPerConnection || !_client.User.TryAddSubscription())
            {
                rejected.Add((name, ErrorCodes.SubscriptionLimit));
                continue;
            }

            var created = _sender.Add(key, book);
            _candles.Add(key, created);
            (added ??= []).Add(created);
        }

        Volatile.Write(ref _subscriptionCount, HeldCount);
        var interval = CandleIntervals.Names[request.Interval];
        var held = _candles is null ? [] : _candles.Keys.Where(k => k % CandleIntervals.Count == request.Interval).Select(k => instruments[k / CandleIntervals.Count].Key).ToList();
        EnqueueControl(ControlFrames.Ack(subscribe ? "subscribe" : "unsubscribe", "candles", "instruments", held, "instrument_key", rejected, interval));
        if (added is null)
        {
            return;
        }

        var history = Math.Min(request.History, _services.CandleMaxHistory);
        foreach (var subscription in added)
        {
            var instrumentId = subscription.InstrumentId / CandleIntervals.Count;
            var instrumentKey = instruments[instrumentId].Key;
            // History before the subscription is live: a bar closing in between is then both in history and offered,
            // which the client sees by its t; the other order could lose it.
            var bars = _services.CandleHistory!.History(instrumentKey, request.Interval, history);
            EnqueueControl(new CandleFrames().History(instrumentKey, request.Interval, bars));
            book.Subscribe(subscription);
            if (book.Latest(subscription.InstrumentId) is { } current)
            {
                subscription.Offer(current);
            }

            book.Touch(instrumentId); // the next pass offers the forming bar, if there is one and no one else had it
        }
    }

    /// <summary>The end of the receive loop: every candle subscription is dropped with the prices.</summary>
    private void ReleaseCandles()
    {
        if (_candles is null || _services.Candles is not { } book)
        {
            return;
        }

        foreach (var subscription in _candles.Values)
        {
            book.Unsubscribe(subscription);
            subscription.MarkRemoved();
        }

        _client.User.RemoveSubscriptions(_candles.Count);
        _candles.Clear();
    }
}
