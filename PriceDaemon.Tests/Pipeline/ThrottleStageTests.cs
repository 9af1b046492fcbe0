using System.Threading.Channels;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Pipeline;

/// <summary>
/// The throttle stage's real loop, driven by a <see cref="FakeTimeProvider"/>. Because the stage reads
/// ticks in order on one loop, a tick for another instrument whose window is open works as a barrier:
/// once its frame comes out, every tick written before it has been applied.
/// </summary>
public sealed class ThrottleStageTests
{
    private const int A = 0;
    private const int B = 1;
    private const int FirstBarrier = 2;

    private FakeTimeProvider _time = null!;
    private IngestChannel _ingest = null!;
    private Channel<PriceFrame> _output = null!;
    private ThrottleStage _stage = null!;
    private PriceCache _cache = null!;
    private int _nextBarrier = FirstBarrier;

    [SetUp]
    public async Task SetUp()
    {
        _time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-19T10:30:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await StartAsync(Channel.CreateUnbounded<PriceFrame>());
    }

    [TearDown]
    public async Task TearDown()
    {
        await _stage.StopAsync(CancellationToken.None);
        _stage.Dispose();
    }

    [Test]
    public async Task Throttle_EmitsFirstTickAtOnce_WhenWindowIsOpen()
    {
        await TickAsync(A, 101, 10);
        var frame = await NextAsync();
        Assert.That((frame.InstrumentId, frame.LastPrice, frame.Volume, frame.Seq), Is.EqualTo((A, 101.0, 10L, 1L)));
    }

    [Test]
    public async Task Throttle_MergesTicksInsideWindow_LatestPriceAndVolumeWin()
    {
        await TickAsync(A, 101, 10);
        await NextAsync();

        await TickAsync(A, 102, 20);
        await TickAsync(A, 103, 30);
        await TickAsync(A, 99.5, 40);
        Assert.That(await DrainUntilBarrierAsync(), Is.Empty, "nothing may be emitted for A inside its window");

        _time.Advance(TimeSpan.FromMilliseconds(250));
        var merged = await NextAsync();
        Assert.That((merged.InstrumentId, merged.LastPrice, merged.Volume, merged.Seq), Is.EqualTo((A, 99.5, 40L, 2L)));
        Assert.That(_cache.Get(A), Is.SameAs(merged));
    }

    [Test]
    public async Task Throttle_EmitsPendingUpdateWhenWindowCloses_WithoutAnotherTick()
    {
        await TickAsync(A, 101, 10);
        await NextAsync();
        await TickAsync(A, 105, 11);
        Assert.That(await DrainUntilBarrierAsync(), Is.Empty);

        _time.Advance(TimeSpan.FromMilliseconds(249));
        Assert.That(await DrainUntilBarrierAsync(), Is.Empty, "the window is still closed at 249 ms");

        _time.Advance(TimeSpan.FromMilliseconds(1));
        var frame = await NextAsync();
        Assert.That((frame.InstrumentId, frame.LastPrice), Is.EqualTo((A, 105.0)));
    }

    [Test]
    public async Task Throttle_EmitsAtMostOncePerWindow_UnderContinuousTicks()
    {
        var emitted = new List<(int Step, PriceFrame Frame)>();
        for (var step = 0; step < 40; step++)
        {
            // Four ticks every 50 ms: 20 ticks per 250 ms window, for 2 s.
            for (var i = 0; i < 4; i++)
            {
                await TickAsync(A, 100 + (step * 4) + i, step);
            }

            emitted.AddRange((await DrainUntilBarrierAsync()).Select(f => (step, f)));
            _time.Advance(TimeSpan.FromMilliseconds(50));
        }

        // The first tick at once, then one merged update as each 250 ms window closes.
        Assert.That(emitted, Has.Count.EqualTo(8));
        Assert.That(emitted.Zip(emitted.Skip(1)).All(p => p.Second.Step - p.First.Step >= 5), Is.True, "two emissions less than 250 ms apart");
        Assert.That(emitted.Select(e => e.Frame.Seq), Is.EqualTo(Enumerable.Range(1, 8).Select(i => (long)i)));
        // Each merged update is the newest tick of the previous window: 4 ticks per step before it.
        Assert.That(emitted.Skip(1).All(e => e.Frame.LastPrice == 100 + (e.Step * 4) - 1), Is.True);
    }

    [Test]
    public async Task Throttle_KeepsInstrumentsIndependent()
    {
        await TickAsync(A, 101, 1);
        Assert.That((await NextAsync()).InstrumentId, Is.EqualTo(A));

        // A's window is closed, B's has never opened: B goes out at once while A waits.
        await TickAsync(A, 102, 2);
        await TickAsync(B, 201, 1);
        var frame = await NextAsync();
        Assert.That((frame.InstrumentId, frame.LastPrice), Is.EqualTo((B, 201.0)));
        Assert.That(await DrainUntilBarrierAsync(), Is.Empty);

        _time.Advance(TimeSpan.FromMilliseconds(250));
        var pending = await NextAsync();
        Assert.That((pending.InstrumentId, pending.LastPrice), Is.EqualTo((A, 102.0)));
    }

    [Test]
    public async Task Stop_EmitsEveryPendingUpdate_AndEveryTickLeftInTheChannel_IntoTheCacheAndFanOut()
    {
        await TickAsync(A, 101, 10);
        await NextAsync();
        await TickAsync(A, 102, 20);
        Assert.That(await DrainUntilBarrierAsync(), Is.Empty, "A's window is closed: 102 is pending");
        // Written just before the stop: the loop may not have read these yet.
        await TickAsync(A, 103, 30);
        await TickAsync(B, 201, 1);

        await _stage.StopAsync(CancellationToken.None).WaitAsync(TestClient.Timeout);

        Assert.That(_cache.Get(A) is { } a ? (a.LastPrice, a.Volume, a.Seq) : default, Is.EqualTo((103.0, 30L, 2L)), "A's pending update, emitted before its window closed");
        Assert.That(_cache.Get(B)?.LastPrice, Is.EqualTo(201.0));
        var emitted = ReadAll(_output.Reader);
        Assert.That(emitted.Select(f => (f.InstrumentId, f.LastPrice)), Is.EquivalentTo(new[] { (A, 103.0), (B, 201.0) }), "fan-out gets them too");
        Assert.That(_output.Reader.Completion.IsCompleted, Is.True, "and then the end of its input, so it can finish and the stop can wait for it");
    }

    [Test]
    public async Task Stop_GivesUpOnAFullFanOutAfterItsTimeout_AndStillCachesEveryUpdate()
    {
        // Room for one frame, and nobody reads it: fan-out is stuck.
        await _stage.StopAsync(CancellationToken.None);
        _stage.Dispose();
        await StartAsync(Channel.CreateBounded<PriceFrame>(1));
        await TickAsync(A, 101, 10);
        await TickAsync(B, 201, 1);
        await TickAsync(A, 102, 20);

        var stop = _stage.StopAsync(CancellationToken.None);
        _time.Advance(ThrottleStage.FanOutDrainTimeout);
        await stop.WaitAsync(TestClient.Timeout);

        Assert.That(_cache.Get(B)?.LastPrice, Is.EqualTo(201.0));
        Assert.That(_cache.Get(A)?.LastPrice, Is.EqualTo(102.0), "the last tick, read after fan-out was given up on");
        Assert.That(ReadAll(_output.Reader).Select(f => f.LastPrice), Is.EqualTo(new[] { 101.0 }), "only what fit");
    }

    private async Task StartAsync(Channel<PriceFrame> output)
    {
        var instruments = new InstrumentRegistry(
            Enumerable.Range(0, 200).Select(i => ($"NSE_EQ|TEST{i}", $"T{i}", $"Test {i}", 100.0)));
        _ingest = new IngestChannel(Options.Create(new FeedOptions()));
        _output = output;
        _cache = new PriceCache(instruments);
        var metrics = new PipelineMetrics(new TestMeterFactory());
        _stage = new ThrottleStage(_ingest, instruments, _cache, _output.Writer, metrics, Options.Create(new ThrottleOptions { MinIntervalMs = 250 }), _time);
        await _stage.StartAsync(CancellationToken.None);
    }

    private static List<PriceFrame> ReadAll(ChannelReader<PriceFrame> reader)
    {
        var frames = new List<PriceFrame>();
        while (reader.TryRead(out var frame))
        {
            frames.Add(frame);
        }

        return frames;
    }

    private ValueTask TickAsync(int id, double price, long volume) =>
        _ingest.Writer.WriteAsync(new Tick(id, price, volume, _time.GetUtcNow().ToUnixTimeMilliseconds() * 1000, _time.GetTimestamp(), PriceSource.Live));

    private async Task<PriceFrame> NextAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await _output.Reader.ReadAsync(timeout.Token);
    }

    /// <summary>
    /// Ticks an instrument that has never ticked (so its window is open and it is emitted at once) and
    /// returns every other frame that came out before it: exactly what the earlier ticks produced.
    /// </summary>
    private async Task<List<PriceFrame>> DrainUntilBarrierAsync()
    {
        var barrier = _nextBarrier++;
        await TickAsync(barrier, 1, 1);
        var others = new List<PriceFrame>();
        while (await NextAsync() is var frame && frame.InstrumentId != barrier)
        {
            others.Add(frame);
        }

        return others;
    }
}
