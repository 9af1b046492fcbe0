using PriceDaemon.Sockets;

namespace PriceDaemon.Tests.Sockets;

/// <summary>
/// When the sweep compacts the heap after a connection storm (opted in): only for a storm that arrived fast and went
/// past the count at the last collection, once it is over and the pipeline is quiet, never within the minimum interval;
/// never for a trickle, however long, nor for sockets that drop and come back. Driven by the sweep's count, a
/// timestamp and the quiet flag, one sweep a second.
/// </summary>
public sealed class StormCompactionTests
{
    private const long Frequency = 1000; // timestamp ticks per second
    private const int Threshold = 1000;

    [Test]
    public void AFastStorm_FiresOnce_AtTheFirstSweepThatSeesItOver()
    {
        var sweeps = new Sweeps();
        Assert.That(sweeps.At(10), Is.False, "the first sweep only looks");
        Assert.That(sweeps.At(600), Is.False, "below a storm");
        Assert.That(sweeps.At(1500), Is.False, "a storm, still growing fast");
        Assert.That(sweeps.At(2100), Is.False, "still growing fast");
        Assert.That(sweeps.At(2150), Is.True, "the tail: a tenth of the threshold a second or less");
        Assert.That(sweeps.For(seconds: 3 * 3600, static _ => 2150), Is.Zero, "the same storm fires once");
    }

    [Test]
    public void ATrickle_NeverFires_NorAClassOpeningThePageAtMarketOpen()
    {
        // The review's morning: 5 to 50 sockets a second from 07:00 up to 1,650 (and on past a storm's worth), then a
        // class of 150 in one second at 09:15.
        var sweeps = new Sweeps();
        var count = 0;
        var fired = sweeps.For(seconds: 8100, second =>
        {
            count += 5 + (second % 46);
            return Math.Min(count, 1650);
        });
        fired += sweeps.For(seconds: 60, second => 1650 + (second == 0 ? 0 : 150));
        var longer = sweeps.For(seconds: 3600, second => 1800 + (second * 40)); // 40 a second for an hour: 144,000 more
        Assert.That((fired, longer), Is.EqualTo((0, 0)));
    }

    [Test]
    public void ReconnectsThatFlap_DoNotFireEveryTenSeconds_NorOneClientOpeningAndClosingAThousand()
    {
        var sweeps = new Sweeps();
        sweeps.At(0);
        sweeps.At(10_000); // market open
        sweeps.At(20_000);
        Assert.That(sweeps.At(20_000), Is.True, "the storm");

        // A thousand drop and come back every ten seconds, for an hour; the same as one client opening and closing a
        // thousand sockets: the count never goes past the mark of the last collection.
        var flapping = sweeps.For(seconds: 3600, static second => second % 10 < 5 ? 19_000 : 20_000);
        Assert.That(flapping, Is.Zero);
    }

    [Test]
    public void FlappingBeforeAnyCollection_FiresAtMostOnce()
    {
        var sweeps = new Sweeps();
        var count = 0;
        sweeps.For(seconds: 2000, _ => count = Math.Min(count + 10, 20_000)); // a trickle up to 20,000
        var flapping = sweeps.For(seconds: 3600, static second => second % 10 < 5 ? 19_000 : 20_000);
        Assert.That(flapping, Is.EqualTo(1), "the first return is a fast rise past the mark; after it, the mark holds");
    }

    [Test]
    public void ASecondStorm_PastTheMark_Fires_ButNotWithinTheMinimumInterval()
    {
        var sweeps = new Sweeps();
        sweeps.At(0);
        sweeps.At(5000);
        Assert.That(sweeps.At(5000), Is.True);

        sweeps.At(9000); // more clients, fast: past the mark by the threshold
        Assert.That(sweeps.For(seconds: StormCompaction.MinIntervalSeconds - 5, static _ => 9000), Is.Zero, "within the interval");
        Assert.That(sweeps.For(seconds: 10, static _ => 9000), Is.EqualTo(1), "the interval is over");
        Assert.That(sweeps.For(seconds: 3600, static _ => 9000), Is.Zero, "no storm since");
    }

    [Test]
    public void AStormDuringMarketHours_WaitsForAQuietPipeline()
    {
        var sweeps = new Sweeps { Busy = true };
        sweeps.At(0);
        sweeps.At(1000);
        sweeps.At(20_000); // every client reconnects at 11:00, prices flowing
        Assert.That(sweeps.For(seconds: 4 * 3600, static _ => 20_000), Is.Zero, "no pause while frames flow");
        sweeps.Busy = false; // 15:30: the market closed
        Assert.That(sweeps.At(20_000), Is.True);
        Assert.That(sweeps.For(seconds: 3600, static _ => 20_000), Is.Zero);
    }

    [Test]
    public void ThresholdZero_TurnsItOff()
    {
        var sweeps = new Sweeps(threshold: 0);
        sweeps.At(0);
        sweeps.At(50_000);
        Assert.That(sweeps.For(seconds: 60, static _ => 50_000), Is.Zero);
    }

    [TestCase(0, false)]
    [TestCase(1, true)]
    [TestCase(9, true)]
    [TestCase(10, false)]
    [TestCase(1000, false)]
    public void TheThreshold_IsZeroOrAtLeastTen(int threshold, bool refused)
    {
        var problems = new LimitsOptions { CompactAfterConnections = threshold }.Problems().ToList();
        Assert.That(problems, refused ? Has.One.StartsWith("CompactAfterConnections: must be 0 (off) or at least 10") : Is.Empty);
    }

    /// <summary>The sweep: one count a second.</summary>
    private sealed class Sweeps(int threshold = Threshold)
    {
        private readonly StormCompaction _compaction = new(threshold, Frequency);
        private long _second;

        /// <summary>Frames are flowing: the pipeline is not quiet.</summary>
        public bool Busy { get; set; }

        public bool At(int count) => _compaction.ShouldCollect(count, (_second++ * Frequency) + 1, quiet: !Busy);

        /// <summary>One sweep a second for <paramref name="seconds"/>, the count given by the second (from 0); how many fired.</summary>
        public int For(int seconds, Func<int, int> count)
        {
            var fired = 0;
            for (var second = 0; second < seconds; second++)
            {
                fired += At(count(second)) ? 1 : 0;
            }

            return fired;
        }
    }
}
