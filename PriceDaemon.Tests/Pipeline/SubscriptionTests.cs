using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Tests.Pipeline;

/// <summary>
/// The one-frame mailbox. A session's ready list holds each subscription at most once, which rests on one
/// rule: a subscription is signalled only when its mailbox goes from empty to full.
/// </summary>
public sealed class SubscriptionTests
{
    private static readonly FrameEncoder Encoder = new(microseconds: false);
    private static readonly Instrument Reliance = new(0, "NSE_EQ|INE002A01018", "RELIANCE", "Reliance Industries", 1400);

    [Test]
    public void Offer_SignalsOnlyWhenTheMailboxWasEmpty_AndConflatesTheRest()
    {
        var owner = new CountingSubscriber();
        var subscription = new Subscription(owner, 0);

        subscription.Offer(Frame(1));
        subscription.Offer(Frame(2));
        subscription.Offer(Frame(3));

        Assert.That(owner.Signals, Is.EqualTo(1));
        Assert.That(owner.Conflations, Is.EqualTo(2));
        Assert.That(subscription.Take()!.Seq, Is.EqualTo(3), "the newest frame wins");

        subscription.Offer(Frame(4));
        Assert.That(owner.Signals, Is.EqualTo(2), "emptied by the writer, so the next offer signals again");
    }

    [Test]
    public void ARemovedSubscription_IsNeverSignalledAgain_AndYieldsNoFrame()
    {
        var owner = new CountingSubscriber();
        var subscription = new Subscription(owner, 0);
        subscription.Offer(Frame(1));
        Assert.That(owner.Signals, Is.EqualTo(1));

        // Still in the session's ready list when it is removed: a late offer from fan-out (working on an
        // older copy of the index) must not queue it a second time.
        subscription.MarkRemoved();
        subscription.Offer(Frame(2));
        subscription.OfferIfNewer(Frame(3));

        Assert.That(owner.Signals, Is.EqualTo(1));
        Assert.That(subscription.Removed, Is.True);
    }

    private static PriceFrame Frame(long seq) =>
        Encoder.Encode(Reliance, new Tick(0, 1400 + seq, 1000 + seq, 1_700_000_000_000 + seq, 0, PriceSource.Simulated), seq, 1400);

    private sealed class CountingSubscriber : ISubscriber
    {
        public int Signals { get; private set; }

        public int Conflations { get; private set; }

        public void Signal(Subscription subscription) => Signals++;

        public void Conflated() => Conflations++;
    }
}
