using System.Diagnostics;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Sockets;

/// <summary>
/// A session's price subscriptions by instrument id: an array in the order of subscribing, with the dictionary calls
/// the session makes. A socket holds a handful (at most <c>Limits:MaxSubscriptionsPerConnection</c>), and a dictionary
/// of five took 320 bytes of every idle socket (its object, buckets and entries); this takes 120, and a search of a
/// few dozen ids is nothing next to parsing the message. Receive loop only.
/// </summary>
/// <remarks>
/// The limit may be raised to 100,000, and a subscribe or unsubscribe of M instruments on a socket holding N would
/// then cost M × N with a search and a shift per remove. So above <see cref="IndexAbove"/> held, lookups go through a
/// dictionary of slots, and a remove leaves a hole (no shift) that the next read of <see cref="Values"/>, or an add
/// that finds the array full of holes, closes up: each message costs its size plus one pass over what is held.
/// </remarks>
internal sealed class PriceSubscriptions
{
    /// <summary>Up to this many held, a search of the array; above it, the dictionary of slots.</summary>
    internal const int IndexAbove = 32;

    private Subscription[]? _items; // null where a removed one left a hole
    private int _length; // slots used, holes included
    private Dictionary<int, int>? _slots; // instrument id -> slot, once more than IndexAbove were held

    public int Count { get; private set; }

    /// <summary>The subscriptions held, in the order of subscribing, for the ack.</summary>
    public ArraySegment<Subscription> Values
    {
        get
        {
            CloseHoles();
            return new(_items ?? [], 0, Count);
        }
    }

    public bool ContainsKey(int instrumentId) => IndexOf(instrumentId) >= 0;

    public void Add(int instrumentId, Subscription subscription)
    {
        Debug.Assert(instrumentId == subscription.InstrumentId, "keyed by the subscription's own instrument");
        if (IndexOf(instrumentId) >= 0)
        {
            throw new ArgumentException($"instrument {instrumentId} is subscribed already", nameof(instrumentId));
        }

        if (_items is null || _length == _items.Length)
        {
            if (_length > 0 && _length - Count >= _length / 2)
            {
                CloseHoles(); // half of it is holes: room without growing
            }
            else
            {
                Array.Resize(ref _items, Math.Max(4, _length * 2));
            }
        }

        _items![_length] = subscription;
        _slots?.Add(instrumentId, _length);
        _length++;
        Count++;
        if (_slots is null && Count > IndexAbove)
        {
            _slots = new Dictionary<int, int>(Count * 2);
            for (var i = 0; i < _length; i++)
            {
                if (_items[i] is { } held)
                {
                    _slots.Add(held.InstrumentId, i);
                }
            }
        }
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
        _items[index] = null!;
        _slots?.Remove(instrumentId);
        Count--;
        while (_length > 0 && _items[_length - 1] is null)
        {
            _length--; // holes at the end close at once
        }

        return true;
    }

    /// <summary>Lets go of the array too: a session whose loop ended holds nothing.</summary>
    public void Clear()
    {
        _items = null;
        _slots = null;
        _length = 0;
        Count = 0;
    }

    public Enumerator GetEnumerator() => new(this);

    private int IndexOf(int instrumentId)
    {
        if (_slots is not null)
        {
            return _slots.TryGetValue(instrumentId, out var slot) ? slot : -1;
        }

        for (var i = 0; i < _length; i++)
        {
            if (_items![i] is { } held && held.InstrumentId == instrumentId)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Moves what is held down over the holes, keeping its order (and the dictionary's slots right).</summary>
    private void CloseHoles()
    {
        if (_items is null || Count == _length)
        {
            return;
        }

        var to = 0;
        for (var from = 0; from < _length; from++)
        {
            if (_items[from] is not { } held)
            {
                continue;
            }

            if (to != from)
            {
                _items[to] = held;
                if (_slots is not null)
                {
                    _slots[held.InstrumentId] = to;
                }
            }

            to++;
        }

        Array.Clear(_items, to, _length - to);
        _length = to;
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

        public bool MoveNext()
        {
            while (++_index < owner._length)
            {
                if (owner._items![_index] is not null)
                {
                    return true;
                }
            }

            return false;
        }
    }
}
