using PriceDaemon.Instruments;

namespace PriceDaemon.Pipeline;

/// <summary>
/// Instrument id -> its subscriptions. Copy-on-write arrays: fan-out reads a snapshot with one volatile
/// load and no lock; subscribe and unsubscribe (rare next to ticks) pay for a copy under a lock.
/// </summary>
public sealed class SubscriptionIndex
{
    private readonly Subscription[][] _byInstrument;
    private readonly Lock _gate = new();

    public SubscriptionIndex(InstrumentRegistry instruments)
    {
        _byInstrument = new Subscription[instruments.Count][];
        Array.Fill(_byInstrument, []);
    }

    public Subscription[] Get(int instrumentId) => Volatile.Read(ref _byInstrument[instrumentId]);

    public void Add(Subscription subscription)
    {
        lock (_gate)
        {
            var current = _byInstrument[subscription.InstrumentId];
            var next = new Subscription[current.Length + 1];
            current.CopyTo(next, 0);
            next[^1] = subscription;
            Volatile.Write(ref _byInstrument[subscription.InstrumentId], next);
        }
    }

    public void Remove(Subscription subscription)
    {
        lock (_gate)
        {
            var current = _byInstrument[subscription.InstrumentId];
            var index = Array.IndexOf(current, subscription);
            if (index < 0)
            {
                return;
            }

            Subscription[] next;
            if (current.Length == 1)
            {
                next = [];
            }
            else
            {
                next = new Subscription[current.Length - 1];
                Array.Copy(current, 0, next, 0, index);
                Array.Copy(current, index + 1, next, index, current.Length - index - 1);
            }

            Volatile.Write(ref _byInstrument[subscription.InstrumentId], next);
        }
    }

    /// <summary>All subscriptions, summed at collection time (metrics).</summary>
    public int Total()
    {
        var total = 0;
        for (var i = 0; i < _byInstrument.Length; i++)
        {
            total += Volatile.Read(ref _byInstrument[i]).Length;
        }

        return total;
    }

    /// <summary>Number of subscriptions to an instrument (metrics, tests).</summary>
    public int Count(int instrumentId) => Get(instrumentId).Length;
}
