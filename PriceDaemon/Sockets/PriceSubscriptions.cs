using PriceDaemon.Pipeline;

namespace PriceDaemon.Sockets;

/// <summary>
/// A session's price subscriptions by instrument id: an array searched in order, with the dictionary calls the
/// session makes. A socket holds a handful (at most <c>Limits:MaxSubscriptionsPerConnection</c>), and a dictionary of
/// five took 320 bytes of every idle socket (its object, buckets and entries); this takes 112, and a search of a
/// hundred ids per subscribe message is nothing next to parsing it. Order is the order of subscribing. Receive loop only.
/// </summary>
internal sealed class PriceSubscriptions
{
    private Subscription[]? _items;

    public int Count { get; private set; }

    /// <summary>The subscriptions held, for the ack.</summary>
    public ArraySegment<Subscription> Values => new(_items ?? [], 0, Count);

    public bool ContainsKey(int instrumentId) => IndexOf(instrumentId) >= 0;

    public void Add(int instrumentId, Subscription subscription)
    {
        if (IndexOf(instrumentId) >= 0)
        {
            throw new ArgumentException($"instrument {instrumentId} is subscribed already", nameof(instrumentId));
        }

        if (_items is null || Count == _items.Length)
        {
            Array.Resize(ref _items, Math.Max(4, Count * 2));
        }

        _items[Count++] = subscription;
    }

    public bool Remove(int instrumentId, out Subscription subscription)
    {
        var index = IndexOf(instrumentId);
        if (index < 0)
        {
            subscription = null!;
            return false;
        }

        subscription = _items![index];
        Array.Copy(_items, index + 1, _items, index, Count - index - 1);
        _items[--Count] = null!;
        return true;
    }

    /// <summary>Lets go of the array too: a session whose loop ended holds nothing.</summary>
    public void Clear()
    {
        _items = null;
        Count = 0;
    }

    public Enumerator GetEnumerator() => new(this);

    private int IndexOf(int instrumentId)
    {
        for (var i = 0; i < Count; i++)
        {
            if (_items![i].InstrumentId == instrumentId)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Pairs of instrument id and subscription, as a dictionary's enumerator gives them.</summary>
    public struct Enumerator(PriceSubscriptions owner)
    {
        private int _index = -1;

        public readonly KeyValuePair<int, Subscription> Current
        {
            get
            {
                var subscription = owner._items![_index];
                return new(subscription.InstrumentId, subscription);
            }
        }

        public bool MoveNext() => ++_index < owner.Count;
    }
}
