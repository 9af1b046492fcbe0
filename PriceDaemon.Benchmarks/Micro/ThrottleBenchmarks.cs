using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Benchmarks.Micro;

/// <summary>
/// The throttle stage's per-tick cost, called directly with an explicit clock value: a tick in an open
/// window (emits a frame), a tick merged into a pending update, and a tick that waits for its window followed by
/// the window closing (emits one frame). None allocates: frames come from the stage's pool, as in the daemon (no
/// reader or fan-out holds them here, so each replaced frame is reused at once).
/// </summary>
[MemoryDiagnoser]
public class ThrottleBenchmarks
{
    private const int Instruments = 500;

    private readonly BenchmarkMeterFactory _meters = new();
    private ThrottleStage _emitting = null!;
    private ThrottleStage _coalescing = null!;
    private ThrottleStage _windowed = null!;
    private long _intervalTicks;
    private long _now;
    private long _windowStart;
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        // 0 ms: every tick finds its window open. 250 ms: the daemon's default window.
        _emitting = Create(0);
        _coalescing = Create(250);
        _windowed = Create(250);
        _intervalTicks = 250 * TimeProvider.System.TimestampFrequency / 1000;
        _now = 1;
        _windowStart = _now - _intervalTicks;

        // One emitted tick per instrument starts each window; from then on _coalescing only merges.
        for (var id = 0; id < Instruments; id++)
        {
            _coalescing.OnTick(Universe.Tick(id, 100, 1), _now);
            _windowed.OnTick(Universe.Tick(id, 100, 1), _now);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _emitting.Dispose();
        _coalescing.Dispose();
        _windowed.Dispose();
        _meters.Dispose();
    }

    [Benchmark]
    public PriceFrame? OnTick_Emits_WindowOpen() => _emitting.OnTick(NextTick(), ++_now);

    [Benchmark]
    public PriceFrame? OnTick_Merges_WindowClosed() => _coalescing.OnTick(NextTick(), ++_now);

    [Benchmark]
    public PriceFrame? OnTickThenTakeDue_EmitsOnce_WhenWindowCloses()
    {
        // Every instrument's window starts together, once per round: each tick lands inside its window
        // and is emitted by TakeDue when the window closes.
        var tick = NextTick();
        if (tick.InstrumentId == 0)
        {
            _windowStart += _intervalTicks;
        }

        _windowed.OnTick(tick, _windowStart + 1);
        return _windowed.TakeDue(_windowStart + _intervalTicks);
    }

    private Tick NextTick()
    {
        var id = _next;
        _next = (_next + 1) % Instruments;
        return Universe.Tick(id, 100 + (id % 7), 1_000 + id);
    }

    private ThrottleStage Create(int minIntervalMs)
    {
        var instruments = Universe.Create(Instruments);
        // The loop is never started: the benchmarks call OnTick/TakeDue directly, so the output is never written.
        var output = Channel.CreateUnbounded<PriceFrame>();
        return new ThrottleStage(
            new IngestChannel(Options.Create(new FeedOptions())),
            instruments,
            new PriceCache(instruments),
            output.Writer,
            new PipelineMetrics(_meters),
            Options.Create(new ThrottleOptions { MinIntervalMs = minIntervalMs }),
            TimeProvider.System,
            microseconds: true,
            pooled: true);
    }
}
