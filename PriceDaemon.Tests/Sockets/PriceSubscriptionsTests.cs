using PriceDaemon.Pipeline;
using PriceDaemon.Sockets;

namespace PriceDaemon.Tests.Sockets;

/// <summary>The session's small map of price subscriptions: the dictionary calls it answers, in subscribe order.</summary>
public sealed class PriceSubscriptionsTests
{
    [Test]
    public void AddFindRemove_KeepTheOrderOfSubscribing_AndClearLetsGoOfEverything()
    {
        var map = new PriceSubscriptions();
        var owner = new NullSubscriber();
        foreach (var id in new[] { 7, 3, 9, 1, 5, 11 })
        {
            map.Add(id, new Subscription(owner, id));
        }

        Assert.That(map.Count, Is.EqualTo(6));
        Assert.That(map.ContainsKey(9), Is.True);
        Assert.That(map.ContainsKey(2), Is.False);
        Assert.That(() => map.Add(3, new Subscription(owner, 3)), Throws.ArgumentException, "one subscription per instrument");

        Assert.That(map.Remove(9, out var removed), Is.True);
        Assert.That(removed.InstrumentId, Is.EqualTo(9));
        Assert.That(map.Remove(9, out _), Is.False);
        Assert.That(map.Values.Select(static s => s.InstrumentId), Is.EqualTo(new[] { 7, 3, 1, 5, 11 }));

        var pairs = new List<(int, int)>();
        foreach (var (id, subscription) in map)
        {
            pairs.Add((id, subscription.InstrumentId));
        }

        Assert.That(pairs, Is.EqualTo(new[] { (7, 7), (3, 3), (1, 1), (5, 5), (11, 11) }));
        map.Clear();
        Assert.That(map.Count, Is.Zero);
        Assert.That(map.Values, Is.Empty);
    }

    private sealed class NullSubscriber : ISubscriber
    {
        public void Offered(Subscription subscription, StreamFrame frame)
        {
        }
    }
}
