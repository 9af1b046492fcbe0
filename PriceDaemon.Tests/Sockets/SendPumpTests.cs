using PriceDaemon.Sockets.Send;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Sockets;

/// <summary>
/// The send threads, with sessions that follow PriceSession's protocol: queue work, then schedule the
/// session unless it is already scheduled; the pass drains, releases the flag, and looks again.
/// </summary>
public sealed class SendPumpTests
{
    [TestCase(1)]
    [TestCase(3)]
    public async Task EveryItemQueuedFromManyThreads_IsWritten_AndPassesOfOneSessionNeverOverlap(int threads)
    {
        using var pump = new SendPump(threads);
        var sessions = Enumerable.Range(0, 64).Select(i => new CountingSession(pump, i)).ToArray();
        const int PerProducer = 50_000;

        // Producers race the pump threads, which keep going to sleep and being woken: a lost wake-up
        // leaves items unwritten, overlapping passes trip the session's guard.
        var producers = Enumerable.Range(0, 4).Select(p => Task.Run(() =>
        {
            for (var i = 0; i < PerProducer; i++)
            {
                sessions[(i * 7 + p) % sessions.Length].Add();
                if (i % 5_000 == 0)
                {
                    Thread.Sleep(1);
                }
            }
        })).ToArray();
        await Task.WhenAll(producers);

        await Eventually.TrueAsync(
            () => sessions.Sum(s => s.Written) == 4 * PerProducer,
            () => $"written {sessions.Sum(s => s.Written)} of {4 * PerProducer}");
        Assert.That(sessions.Sum(s => s.Overlaps), Is.Zero, "two passes of one session ran at once");
        Assert.That(sessions.Sum(s => s.Passes), Is.LessThan(4 * PerProducer), "items queued while a session waited went out in one pass");
    }

    [Test]
    public async Task ASessionScheduledAfterTheThreadsWentIdle_IsStillRun()
    {
        using var pump = new SendPump(2);
        var session = new CountingSession(pump, 5);
        for (var round = 1; round <= 20; round++)
        {
            await Task.Delay(5); // the pump threads are asleep by now
            session.Add();
            var expected = round;
            await Eventually.TrueAsync(() => session.Written == expected, () => $"round {expected}: written {session.Written}");
        }
    }

    [Test]
    public void SendThreads_Zero_PicksOnePerTwoCores_BetweenOneAndFour()
    {
        using var pump = new SendPump(0);
        Assert.That(pump.Threads, Is.EqualTo(Math.Clamp(Environment.ProcessorCount / 2, 1, 4)));
    }

    private sealed class CountingSession : ISendPass
    {
        private readonly SendPump _pump;
        private readonly long _key;
        private int _queued;
        private int _scheduled;
        private int _inPass;
        private int _written;
        private int _passes;
        private int _overlaps;

        public CountingSession(SendPump pump, long key)
        {
            _pump = pump;
            _key = key;
        }

        public int Written => Volatile.Read(ref _written);

        public int Passes => Volatile.Read(ref _passes);

        public int Overlaps => Volatile.Read(ref _overlaps);

        public void Add()
        {
            Interlocked.Increment(ref _queued);
            if (Interlocked.CompareExchange(ref _scheduled, 1, 0) == 0)
            {
                _pump.Schedule(this, _key);
            }
        }

        public void RunSendPass()
        {
            if (Interlocked.Exchange(ref _inPass, 1) != 0)
            {
                Interlocked.Increment(ref _overlaps);
            }

            Interlocked.Increment(ref _passes);
            Interlocked.Add(ref _written, Interlocked.Exchange(ref _queued, 0));
            Volatile.Write(ref _inPass, 0);

            Interlocked.Exchange(ref _scheduled, 0);
            if (Volatile.Read(ref _queued) > 0 && Interlocked.CompareExchange(ref _scheduled, 1, 0) == 0)
            {
                _pump.Schedule(this, _key);
            }
        }
    }
}
