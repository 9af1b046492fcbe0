using System.Buffers.Text;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Pipeline;

/// <summary>
/// The lifetime rule of pooled price frames (see <see cref="PriceFrame"/>): a frame the cache replaced is reused only
/// once no read scope can hold it and fan-out has taken it. Driven through the real throttle stage's tick path, with
/// the clock passed in, so every emission is explicit.
/// </summary>
public sealed class FramePoolTests
{
    private const int Instruments = 8;

    private PriceCache _cache = null!;
    private ThrottleStage _stage = null!;
    private PipelineMetrics _metrics = null!;
    private long _now;

    [SetUp]
    public void SetUp()
    {
        var instruments = new InstrumentRegistry(
            Enumerable.Range(0, Instruments).Select(i => ($"NSE_EQ|POOL{i}", $"P{i}", $"Pool {i}", 100.0)));
        _cache = new PriceCache(instruments);
        // No window: every tick is emitted, so each call below replaces the instrument's cached frame.
        _stage = new ThrottleStage(
            new IngestChannel(Options.Create(new FeedOptions())),
            instruments,
            _cache,
            Channel.CreateUnbounded<PriceFrame>().Writer,
            _metrics = new PipelineMetrics(new TestMeterFactory()),
            Options.Create(new ThrottleOptions { MinIntervalMs = 0 }),
            TimeProvider.System,
            pooled: true);
    }

    [TearDown]
    public void TearDown() => _stage.Dispose();

    [Test]
    public void AReplacedFrame_IsNotReused_WhileAReaderHoldsIt_AndIsReusedAfter()
    {
        var held = Emit(0, 101);
        var scope = _cache.Read();
        PriceFrame read;
        string bytes;
        try
        {
            read = _cache.Get(0)!;
            bytes = Encoding.UTF8.GetString(read.Utf8.Span);
            Emit(0, 102); // replaces and retires it
            var others = Enumerable.Range(1, 5).Select(i => Emit(i, 200 + i)).ToList();

            Assert.That(read, Is.SameAs(held));
            Assert.That(others, Has.None.SameAs(held), "reused while a reader held it");
            Assert.That(Encoding.UTF8.GetString(read.Utf8.Span), Is.EqualTo(bytes), "its bytes changed under the reader");
            Assert.That(read.LastPrice, Is.EqualTo(101));
        }
        finally
        {
            scope.Dispose();
        }

        Assert.That(Emit(6, 300), Is.SameAs(held), "the oldest retired frame is reused once the reader has left");
        Assert.That(held.InstrumentId, Is.EqualTo(6));
        Assert.That(Encoding.UTF8.GetString(held.Utf8.Span), Does.Contain("\"last_price\":300,"));
    }

    [Test]
    public void AReaderThatEnteredAfterTheRetirement_DoesNotHoldTheFrameBack()
    {
        var first = Emit(0, 101);
        Emit(0, 102); // first is retired here
        using var scope = _cache.Read(); // entered later: it can only reach the replacing frame

        Assert.That(_cache.Get(0)!.LastPrice, Is.EqualTo(102));
        Assert.That(Emit(1, 200), Is.SameAs(first));
    }

    [Test]
    public void InSteadyState_ThePoolStopsGrowing()
    {
        for (var round = 0; round < 100; round++)
        {
            for (var id = 0; id < Instruments; id++)
            {
                Emit(id, 100 + round);
            }
        }

        // One frame per instrument in the cache and one retired ahead of each reuse: nothing per emission.
        Assert.That(_stage.PooledFrames, Is.LessThanOrEqualTo(Instruments + 1));
    }

    [Test]
    public void AFrameWaitingForFanOut_IsNotReused_UntilFanOutHasTakenIt()
    {
        var epochs = new FrameEpochs();
        var pool = new PriceFramePool(epochs);
        var frame = pool.Rent(fannedOut: 0);
        frame.Ticket = 1;
        pool.Retire(frame);

        Assert.That(pool.Rent(fannedOut: 0), Is.Not.SameAs(frame), "fan-out has not taken ticket 1 yet");
        Assert.That(pool.Rent(fannedOut: 1), Is.SameAs(frame));
    }

    [Test]
    public void FramesThePoolDidNotMake_AreLeftToTheCollector()
    {
        var epochs = new FrameEpochs();
        var pool = new PriceFramePool(epochs);
        var restored = new FrameEncoder().Encode(new Instrument(0, "NSE_EQ|R", "R", "R", 100), new Tick(0, 100, 1, 1, 0, PriceSource.Stored), 1, 100);
        pool.Retire(restored);

        Assert.That(pool.Retired, Is.Zero);
        Assert.That(pool.Rent(long.MaxValue), Is.Not.SameAs(restored));
    }

    [Test]
    public void AFrameNeverWrittenToFanOut_DoesNotHoldBackTheFramesBehindIt()
    {
        // The stop gave up on fan-out: the frame it could not write has ticket 0 (ThrottleStage.NotFannedOut).
        var epochs = new FrameEpochs();
        var pool = new PriceFramePool(epochs);
        var dropped = pool.Rent(fannedOut: 0);
        dropped.Ticket = 0;
        pool.Retire(dropped);

        Assert.That(pool.Rent(fannedOut: 0), Is.SameAs(dropped), "fan-out has taken nothing, and need not take it");
    }

    [Test]
    public void AScopeDisposedTwice_DoesNotClearAnotherReadersClaim()
    {
        var epochs = new FrameEpochs();
        var first = epochs.Enter();
        var copy = first;
        first.Dispose();
        // The same thread starts at the same slot: the second reader takes the slot the first has left.
        using var second = epochs.Enter();
        copy.Dispose();
        var tag = epochs.Retire();

        Assert.That(epochs.Active(), Is.EqualTo(1), "the copy cleared the second reader's claim");
        Assert.That(epochs.SafeBelow(), Is.LessThanOrEqualTo(tag), "a frame retired now is still held back by the second reader");
    }

    [Test]
    public void AfterAReaderHeldFramesBack_ThePoolShrinksAgain_AndCountsAndWarnsOnce()
    {
        var pool = new PriceFramePool(_cache.Readers, Instruments, _metrics);
        var target = pool.Target;
        var frames = new PriceFrame?[Instruments];

        // A reader stays in its scope while 6 x target frames are replaced: none can be reused, the pool makes them.
        var warnings = 0;
        using (var scope = _cache.Readers.Enter())
        {
            Assert.That(_cache.Readers.OldestReaderAge(), Is.Zero);
            for (var i = 0; i < 6 * target; i++)
            {
                Replace(i % Instruments);
            }

            Assert.That(_cache.Readers.OldestReaderAge(), Is.GreaterThanOrEqualTo(6 * target - Instruments));
        }

        Assert.That(warnings, Is.EqualTo(1), "one warning, once past 4 x target");
        Assert.That(pool.Retired, Is.GreaterThan(5 * target));
        var grown = pool.Created;
        Assert.That(Volatile.Read(ref _metrics.PoolFramesCreated), Is.EqualTo(grown));

        // Reader gone: each reuse drops one more reusable frame, until no more than 2 x target wait.
        for (var i = 0; i < 6 * target; i++)
        {
            Replace(i % Instruments);
        }

        Assert.That(pool.Created, Is.EqualTo(grown), "nothing made once the frames are reusable");
        Assert.That(pool.Retired, Is.LessThanOrEqualTo((2 * target) + 1), "the last retirement comes after the last trim");
        Assert.That(pool.Dropped, Is.GreaterThanOrEqualTo(3 * target));
        Assert.That(Volatile.Read(ref _metrics.PoolFramesDropped), Is.EqualTo(pool.Dropped));
        Assert.That(Volatile.Read(ref _metrics.PoolFramesRetired), Is.EqualTo(pool.Retired));
        Assert.That(_cache.Readers.OldestReaderAge(), Is.Zero);

        void Replace(int id)
        {
            var frame = pool.Rent(long.MaxValue);
            if (frames[id] is { } old)
            {
                pool.Retire(old);
            }

            frames[id] = frame;
            if (pool.Growing)
            {
                warnings++;
                pool.Reported();
            }
        }
    }

    /// <summary>
    /// About 100,000 short read scopes against a writer that emits as fast as it can: each frame read must be whole
    /// (its bytes name its instrument and carry its last_price and seq, and its price is one the writer gives that
    /// instrument), which a frame refilled while a reader is inside its scope would not be. The pool makes a frame only
    /// while a reader holds back every retired one, so it never exceeds the instruments plus the oldest reader's age
    /// (retirements since it entered), measured after each emission: not a fraction of the emissions, which depends on
    /// how long this loaded machine preempts a reader inside its scope.
    /// </summary>
    [Test]
    public void Stress_ShortScopes_EveryFrameReadIsWhole_AndThePoolStaysSmall()
    {
        long emitted = 0;
        long oldestAge = 0;
        var stop = 0;
        var writer = new Thread(() =>
        {
            for (var round = 0; Volatile.Read(ref stop) == 0; round++)
            {
                for (var id = 0; id < Instruments; id++)
                {
                    Emit(id, PriceOf(id, round));
                    oldestAge = Math.Max(oldestAge, _cache.Readers.OldestReaderAge());
                }

                Volatile.Write(ref emitted, emitted + Instruments);
            }
        });
        writer.Start();

        var errors = ShortScopes(_cache, cycles: 50_000);
        Volatile.Write(ref stop, 1);
        writer.Join();

        Assert.That(errors, Is.Empty);
        Assert.That(emitted, Is.GreaterThan(10_000), "the writer ran alongside");
        // Made only while every retired frame is held back: the cache's frames, the held-back ones, the one being filled.
        // Frames dropped by a trim after a long hold are made again by a later one: the bound is on those alive.
        var alive = _stage.PooledFrames - Volatile.Read(ref _metrics.PoolFramesDropped);
        Assert.That(alive, Is.LessThanOrEqualTo((2 * Instruments) + oldestAge + 2), "frames made per emission, not per reader's hold");
        Assert.That(_stage.PooledFrames, Is.LessThan(emitted), "frames are reused");
    }

    /// <summary>
    /// The same through the running stages: ticks go through the throttle's own loop into the real fan-out stage, whose
    /// thread takes each frame and moves the tickets on, so reuse waits on fan-out as well as on the readers.
    /// </summary>
    [Test]
    public async Task Stress_ShortScopes_WithFanOutDrainingOnItsOwnThread()
    {
        var instruments = new InstrumentRegistry(
            Enumerable.Range(0, Instruments).Select(i => ($"NSE_EQ|POOL{i}", $"P{i}", $"Pool {i}", 100.0)));
        var cache = new PriceCache(instruments);
        var metrics = new PipelineMetrics(new TestMeterFactory());
        var ingest = new IngestChannel(Options.Create(new FeedOptions()));
        using var fanOut = new FanOutStage(new SubscriptionIndex(instruments), NullLogger<FanOutStage>.Instance);
        using var stage = new ThrottleStage(
            ingest, instruments, cache, fanOut.Writer, metrics, Options.Create(new ThrottleOptions { MinIntervalMs = 0 }), TimeProvider.System, pooled: true, fanOut: fanOut);
        await fanOut.StartAsync(CancellationToken.None);
        await stage.StartAsync(CancellationToken.None);

        var stop = 0;
        var feed = new Thread(() =>
        {
            var spinner = default(SpinWait);
            for (var round = 0; Volatile.Read(ref stop) == 0; round++)
            {
                for (var id = 0; id < Instruments; id++)
                {
                    while (!ingest.Writer.TryWrite(new Tick(id, PriceOf(id, round), 1_000, 1_768_818_600_000_000, 0, PriceSource.Live)))
                    {
                        spinner.SpinOnce(); // the throttle is behind: wait for room, as the feeds do
                    }
                }
            }
        });
        feed.Start();

        var errors = ShortScopes(cache, cycles: 50_000, until: () => Volatile.Read(ref metrics.UpdatesEmitted) > 10_000);
        Volatile.Write(ref stop, 1);
        feed.Join();
        await stage.StopAsync(CancellationToken.None).WaitAsync(TestClient.Timeout);
        await fanOut.StopAsync(CancellationToken.None).WaitAsync(TestClient.Timeout);

        var emitted = Volatile.Read(ref metrics.UpdatesEmitted);
        Assert.That(errors, Is.Empty);
        Assert.That(emitted, Is.GreaterThan(10_000), "the throttle ran alongside");
        Assert.That(fanOut.FannedOut, Is.EqualTo(emitted), "fan-out took every frame");
        // Fan-out's lag (up to its channel's 16,384) and preempted readers both hold frames back: only reuse is asserted.
        Assert.That(stage.PooledFrames, Is.LessThan(emitted), "frames are reused once fan-out has taken them");
    }

    // Prices that say which instrument they belong to: id * 1000 plus a quarter step (exact in binary, so the bytes
    // parse back to the same double).
    private static double PriceOf(int id, int round) => (id * 1_000) + 100 + ((round % 2_000) * 0.25);

    /// <summary>Two readers each run <paramref name="cycles"/> enter / read / check / exit cycles; returns what was wrong.</summary>
    /// <param name="until">
    /// Also read on until this holds (checked every 1,000 cycles, up to 100 times the cycles): how fast the writer runs
    /// beside the readers depends on the machine, so what must happen alongside is waited for, not assumed.
    /// </param>
    private static List<string> ShortScopes(PriceCache cache, int cycles, Func<bool>? until = null)
    {
        var errors = new List<string>();
        var readers = Enumerable.Range(0, 2).Select(r => new Thread(() =>
        {
            for (var cycle = 0; cycle < cycles || (until is not null && cycle < cycles * 100 && (cycle % 1_000 != 0 || !until())); cycle++)
            {
                string? error;
                using (var scope = cache.Read())
                {
                    error = cache.Get((cycle + r) % Instruments) is { } frame ? Whole(frame) : null;
                }

                if (error is not null)
                {
                    lock (errors)
                    {
                        errors.Add(error);
                    }
                }
            }
        })).ToList();
        readers.ForEach(t => t.Start());
        readers.ForEach(t => t.Join());
        return errors.Take(5).ToList();
    }

    /// <summary>Null when the frame's bytes and fields describe one price of one instrument; else what differs.</summary>
    private static string? Whole(PriceFrame frame)
    {
        var (id, price, seq) = (frame.InstrumentId, frame.LastPrice, frame.Seq);
        var bytes = frame.Utf8.Span;
        var key = Encoding.UTF8.GetBytes($"{{\"type\":\"price_update\",\"instrument_key\":\"NSE_EQ|POOL{id}\",\"data\":{{\"last_price\":");
        if (!bytes.StartsWith(key))
        {
            return $"instrument {id}: bytes {Encoding.UTF8.GetString(bytes)}";
        }

        if (!Utf8Parser.TryParse(bytes[key.Length..], out double inBytes, out _) || inBytes != price)
        {
            return $"instrument {id} last_price {price}: bytes {Encoding.UTF8.GetString(bytes)}";
        }

        var seqAt = bytes.IndexOf(",\"seq\":"u8);
        if (seqAt < 0 || !Utf8Parser.TryParse(bytes[(seqAt + 7)..], out long seqInBytes, out _) || seqInBytes != seq)
        {
            return $"instrument {id} seq {seq}: bytes {Encoding.UTF8.GetString(bytes)}";
        }

        return (int)(price / 1_000) == id ? null : $"instrument {id} holds price {price}, another instrument's";
    }

    /// <summary>
    /// A writer thread emits as fast as it can while readers hold frames across many of its emissions and check that
    /// the bytes and fields never change under them.
    /// </summary>
    [Test]
    public void Stress_BytesNeverChangeUnderAReaderInAScope()
    {
        Assert.That(Stress(scoped: true), Is.Zero, "holds that saw their frame change");
    }

    /// <summary>The same readers without a scope see their frames refilled: the check above can fail.</summary>
    [Test]
    public void Stress_WithoutAScope_TheFramesChangeUnderTheReader()
    {
        Assert.That(Stress(scoped: false), Is.GreaterThan(0), "holds that saw their frame change");
    }

    private int Stress(bool scoped)
    {
        const int Readers = 3;
        const int HoldsPerReader = 200;
        long emitted = 0;
        var stop = 0;
        var writer = new Thread(() =>
        {
            var price = 100.0;
            while (Volatile.Read(ref stop) == 0)
            {
                for (var id = 0; id < Instruments; id++)
                {
                    Emit(id, price);
                }

                price = price >= 1_000 ? 100 : Math.Round(price + 0.05, 2);
                Volatile.Write(ref emitted, emitted + Instruments);
            }
        });
        writer.Start();

        var changed = 0;
        var readers = Enumerable.Range(0, Readers).Select(r => new Thread(() =>
        {
            for (var hold = 0; hold < HoldsPerReader; hold++)
            {
                if (Hold(r + hold))
                {
                    Interlocked.Increment(ref changed);
                }
            }
        })).ToList();
        readers.ForEach(t => t.Start());
        readers.ForEach(t => t.Join());
        Volatile.Write(ref stop, 1);
        writer.Join();
        return changed;

        // Reads one frame and waits until the writer has replaced every instrument four times over (so a frame with no
        // protection is certainly refilled), then compares.
        bool Hold(int id)
        {
            var scope = scoped ? _cache.Read() : default;
            try
            {
                if (_cache.Get(id % Instruments) is not { } frame)
                {
                    return false;
                }

                var (seq, instrument, price, bytes) = (frame.Seq, frame.InstrumentId, frame.LastPrice, frame.Utf8.ToArray());
                var until = Volatile.Read(ref emitted) + (Instruments * 4);
                var spins = 0;
                while (Volatile.Read(ref emitted) < until)
                {
                    Thread.SpinWait(++spins % 64);
                }

                return frame.Seq != seq || frame.InstrumentId != instrument || frame.LastPrice != price || !frame.Utf8.Span.SequenceEqual(bytes);
            }
            finally
            {
                scope.Dispose();
            }
        }
    }

    private PriceFrame Emit(int id, double price) =>
        _stage.OnTick(new Tick(id, price, 1_000, 1_768_818_600_000_000, 0, PriceSource.Live), ++_now)
        ?? throw new AssertionException("every tick is emitted with no window");
}
