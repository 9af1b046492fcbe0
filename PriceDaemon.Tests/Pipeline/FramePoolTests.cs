using System.Text;
using System.Threading.Channels;
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
            new PipelineMetrics(new TestMeterFactory()),
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
