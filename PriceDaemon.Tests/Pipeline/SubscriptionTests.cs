using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Sockets.Send;

namespace PriceDaemon.Tests.Pipeline;

/// <summary>
/// A subscription and its session's ready marks. A session's queue holds each subscription at most once,
/// which rests on one rule: a slot is marked once until a send pass takes the mark, and every offer in
/// between conflates into the newest (cached) frame.
/// </summary>
public sealed class SubscriptionTests
{
    private static readonly FrameEncoder Encoder = new(microseconds: false);
    private static readonly Instrument Reliance = new(0, "NSE_EQ|INE002A01018", "RELIANCE", "Reliance Industries", 1400);

    [Test]
    public void Offers_MarkTheSlotOnce_UntilAPassTakesIt()
    {
        var owner = new MarkingSubscriber(capacity: 100);
        var subscription = new Subscription(owner, 0, slot: 70);

        subscription.Offer(Frame(1));
        subscription.Offer(Frame(2));
        subscription.Offer(Frame(3));

        Assert.That((owner.NewMarks, owner.Conflations), Is.EqualTo((1, 2)));
        Assert.That(owner.Ready.Take(0), Is.Zero, "slot 70 lives in the second word");
        var marks = owner.Ready.Take(1);
        Assert.That(ReadySlots.Next(1, ref marks), Is.EqualTo(70));
        Assert.That(marks, Is.Zero);

        subscription.Offer(Frame(4));
        Assert.That(owner.NewMarks, Is.EqualTo(2), "taken by the pass, so the next offer marks again");
    }

    [Test]
    public void MarksAPassCouldNotWrite_GoBack_AndAreTakenInSlotOrder()
    {
        var ready = new ReadySlots(capacity: 64);
        foreach (var slot in new[] { 9, 3, 40 })
        {
            Assert.That(ready.Mark(slot), Is.True);
        }

        Assert.That(ready.Count(), Is.EqualTo(3));
        var marks = ready.Take(0);
        Assert.That(ReadySlots.Next(0, ref marks), Is.EqualTo(3));
        ready.Return(0, marks); // the batch was full after one frame
        Assert.That(ready.Any(), Is.True);

        marks = ready.Take(0);
        Assert.That((ReadySlots.Next(0, ref marks), ReadySlots.Next(0, ref marks), marks), Is.EqualTo((9, 40, 0UL)));
        Assert.That(ready.Any(), Is.False);
    }

    [Test]
    public void ASnapshot_IsHeldForThePass_AndTakenOnce()
    {
        var owner = new MarkingSubscriber(capacity: 1);
        var subscription = new Subscription(owner, 0);
        Assert.That(subscription.TakeSnapshot(), Is.Null);

        var snapshot = Frame(5).AsStale();
        subscription.OfferSnapshot(snapshot);
        Assert.That(owner.NewMarks, Is.EqualTo(1));
        Assert.That(subscription.TakeSnapshot(), Is.SameAs(snapshot));
        Assert.That(subscription.TakeSnapshot(), Is.Null);
    }

    [Test]
    public void ARemovedSubscription_IgnoresLateOffers()
    {
        var owner = new MarkingSubscriber(capacity: 1);
        var subscription = new Subscription(owner, 0);
        subscription.Offer(Frame(1));
        owner.Ready.Take(0);

        // Fan-out working on an older copy of the index may still offer to it.
        subscription.MarkRemoved();
        subscription.Offer(Frame(2));

        Assert.That(owner.NewMarks, Is.EqualTo(1));
        Assert.That(owner.Ready.Any(), Is.False);
    }

    private static PriceFrame Frame(long seq) =>
        Encoder.Encode(Reliance, new Tick(0, 1400 + seq, 1000 + seq, 1_700_000_000_000 + seq, 0, PriceSource.Simulated), seq, 1400);

    /// <summary>Marks slots the way a session does, and counts what happened.</summary>
    private sealed class MarkingSubscriber(int capacity) : ISubscriber
    {
        public ReadySlots Ready { get; } = new(capacity);

        public int NewMarks { get; private set; }

        public int Conflations { get; private set; }

        public void Offered(Subscription subscription, StreamFrame frame)
        {
            if (Ready.Mark(subscription.Slot))
            {
                NewMarks++;
            }
            else
            {
                Conflations++;
            }
        }
    }
}
