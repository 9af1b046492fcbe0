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

    [Test]
    public void AboveTheIndexSize_AddFindRemove_StayRight_InOrder_ThroughHolesAndTheirClosing()
    {
        // 1,000 held (past the dictionary's threshold), every third removed, some added back: what is held and its order
        // match a plain ordered list through every step.
        var map = new PriceSubscriptions();
        var owner = new NullSubscriber();
        var expected = new List<int>();
        for (var id = 0; id < 1000; id++)
        {
            map.Add(id, new Subscription(owner, id));
            expected.Add(id);
        }

        for (var id = 0; id < 1000; id += 3)
        {
            Assert.That(map.Remove(id, out var removed) && removed.InstrumentId == id, Is.True);
            expected.Remove(id);
        }

        Assert.That(map.ContainsKey(3), Is.False);
        Assert.That(map.ContainsKey(4), Is.True);
        Assert.That(map.Remove(3, out _), Is.False);
        var seen = new List<int>();
        foreach (var (id, _) in map)
        {
            seen.Add(id);
        }

        Assert.That(seen, Is.EqualTo(expected), "the enumerator skips the holes");
        for (var id = 2000; id < 2400; id++)
        {
            map.Add(id, new Subscription(owner, id));
            expected.Add(id);
        }

        Assert.That(map.Values.Select(static s => s.InstrumentId), Is.EqualTo(expected), "the holes closed: the slots moved");
        Assert.That(map.Remove(1000 - 2, out _), Is.True, "found at its moved slot");
        expected.Remove(998);
        Assert.That(() => map.Add(4, new Subscription(owner, 4)), Throws.ArgumentException);
        Assert.That(map.Count, Is.EqualTo(expected.Count));
        Assert.That(map.Values.Select(static s => s.InstrumentId), Is.EqualTo(expected));
        Assert.That(expected.All(map.ContainsKey), Is.True);
    }

    private sealed class NullSubscriber : ISubscriber
    {
        public void Offered(Subscription subscription, StreamFrame frame)
        {
        }
    }
}
