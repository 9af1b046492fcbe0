using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Sockets;
using PriceDaemon.Sockets.Send;

namespace PriceDaemon.Tests.Sockets;

/// <summary>
/// The slow-consumer state machine on its own, driven by a fake clock and a socket's pending-write time: when it warns
/// (and downsamples), when it lets the socket back to full rate, and when it gives up on it.
/// </summary>
public sealed class FlowControlTests
{
    private static readonly LimitsOptions Limits = new()
    {
        SlowConsumerWarnSeconds = 3,
        SlowConsumerRecoverSeconds = 5,
        SlowConsumerSeconds = 10,
    };

    [Test]
    public void BehindForTheWarnTime_Warns_AtTheLookThatReachesIt()
    {
        var socket = new Socket();
        Assert.That(socket.Look(busyFraction: 0), Is.EqualTo(FlowVerdict.None), "the first look takes the baseline");
        Assert.That(socket.Looks(2, busyFraction: 1), Is.All.EqualTo(FlowVerdict.None), "behind 2 s of 3");
        Assert.That(socket.Look(busyFraction: 1), Is.EqualTo(FlowVerdict.Warn));
        Assert.That(socket.Flow.Downsampled, Is.True);
        Assert.That(socket.Look(busyFraction: 1), Is.EqualTo(FlowVerdict.None), "warned once, not every second");
    }

    [Test]
    public void PendingLessThanHalfTheTime_IsKeepingUp_AndALookThatKeepsUpStartsTheCountAgain()
    {
        var socket = new Socket();
        socket.Look(0);
        Assert.That(socket.Looks(20, busyFraction: 0.4), Is.All.EqualTo(FlowVerdict.None), "pending 40 % of the time: keeping up");

        socket.Looks(2, busyFraction: 0.6);
        socket.Look(busyFraction: 0.1); // caught up for a second
        Assert.That(socket.Looks(2, busyFraction: 0.6), Is.All.EqualTo(FlowVerdict.None), "the 3 s count restarted");
        Assert.That(socket.Look(busyFraction: 0.6), Is.EqualTo(FlowVerdict.Warn), "pending 60 % of the time for 3 s in a row");
    }

    [Test]
    public void Downsampled_AndKeepingUpForTheRecoverTime_ReturnsToFullRate()
    {
        var socket = Warned();
        Assert.That(socket.Looks(4, busyFraction: 0), Is.All.EqualTo(FlowVerdict.None), "kept up 4 s of 5");
        Assert.That(socket.Look(busyFraction: 0), Is.EqualTo(FlowVerdict.Clear));
        Assert.That(socket.Flow.Downsampled, Is.False);

        // Behind again at full rate: warned again after the warn time, not at once.
        Assert.That(socket.Looks(2, busyFraction: 1), Is.All.EqualTo(FlowVerdict.None));
        Assert.That(socket.Look(busyFraction: 1), Is.EqualTo(FlowVerdict.Warn));
    }

    [Test]
    public void Downsampled_AndStillBehindForTheCloseTime_IsClosed_CountingOnlyTheTimeAfterTheWarning()
    {
        var socket = Warned(); // behind for 3 s at full rate already
        Assert.That(socket.Looks(9, busyFraction: 1), Is.All.EqualTo(FlowVerdict.None), "behind 9 s of 10 at the lower rate");
        Assert.That(socket.Look(busyFraction: 1), Is.EqualTo(FlowVerdict.Close));
    }

    [Test]
    public void Downsampled_BehindOnAndOff_IsNeitherClosedNorRecovered()
    {
        var socket = Warned();
        for (var i = 0; i < 30; i++)
        {
            Assert.That(socket.Looks(3, busyFraction: 1), Is.All.EqualTo(FlowVerdict.None), $"round {i}");
            Assert.That(socket.Look(busyFraction: 0), Is.EqualTo(FlowVerdict.None), $"round {i}");
        }

        Assert.That(socket.Flow.Downsampled, Is.True);
    }

    [Test]
    public void LooksWithNoTimeBetweenThem_ChangeNothing()
    {
        var socket = new Socket();
        socket.Look(0);
        socket.Looks(2, busyFraction: 1);
        Assert.That(socket.Flow.Observe(socket.Time.GetTimestamp(), socket.Busy, socket.Limits), Is.EqualTo(FlowVerdict.None), "a second look at the same moment");
        Assert.That(socket.Look(busyFraction: 1), Is.EqualTo(FlowVerdict.Warn), "and the count goes on");
    }

    [Test]
    public void WarnSeconds_NotBelowSlowConsumerSeconds_IsAStartUpProblem_AndZeroTurnsFlowControlOff()
    {
        Assert.That(new LimitsOptions { SlowConsumerWarnSeconds = 10, SlowConsumerSeconds = 10 }.Problems().Single(), Does.StartWith("SlowConsumerWarnSeconds: must be below"));
        Assert.That(new LimitsOptions { SlowConsumerWarnSeconds = 0, SlowConsumerSeconds = 1 }.Problems(), Is.Empty);
        Assert.That(new LimitsOptions().Problems(), Is.Empty, "the defaults");
        Assert.That(new FlowLimits(new LimitsOptions { SlowConsumerWarnSeconds = 0 }, TimeProvider.System).Enabled, Is.False);
    }

    private static Socket Warned()
    {
        var socket = new Socket();
        socket.Look(0);
        socket.Looks(2, busyFraction: 1);
        Assert.That(socket.Look(busyFraction: 1), Is.EqualTo(FlowVerdict.Warn));
        return socket;
    }

    /// <summary>A socket as the sweeper sees it: a look a second, with its writes pending for part of each second.</summary>
    private sealed class Socket
    {
        private FlowControl _flow;

        public FakeTimeProvider Time { get; } = new();

        public FlowLimits Limits { get; }

        public long Busy { get; private set; }

        public FlowControl Flow => _flow;

        public Socket() => Limits = new FlowLimits(FlowControlTests.Limits, Time);

        public FlowVerdict Look(double busyFraction)
        {
            var before = Time.GetTimestamp();
            Time.Advance(TimeSpan.FromSeconds(1));
            var now = Time.GetTimestamp();
            Busy += (long)((now - before) * busyFraction);
            return _flow.Observe(now, Busy, Limits);
        }

        public List<FlowVerdict> Looks(int count, double busyFraction) => Enumerable.Range(0, count).Select(_ => Look(busyFraction)).ToList();
    }
}
