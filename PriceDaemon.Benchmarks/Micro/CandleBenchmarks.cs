using BenchmarkDotNet.Attributes;
using PriceDaemon.Candles;
using PriceDaemon.Feeds;

namespace PriceDaemon.Benchmarks.Micro;

/// <summary>
/// The candle book's per-tick cost on the throttle thread: a tick inside every interval's forming bar (the steady state:
/// must allocate nothing), and ticks walking through a session a second apart, so that a 1-minute bar rolls over every
/// 60 ticks (a roll-over queues the closed bar: one queue slot, amortized).
/// </summary>
[MemoryDiagnoser]
public class CandleBenchmarks
{
    private const int Instruments = 500;

    // Monday 2026-11-30 10:00:00 IST, in Unix microseconds.
    private static readonly long SessionUs = new DateTimeOffset(2026, 11, 30, 10, 0, 0, TimeSpan.FromHours(5.5)).ToUnixTimeMilliseconds() * 1000;

    private CandleBook _book = null!;
    private int _next;
    private long _volume;
    private long _clockUs;
    private long _dayUs;

    [GlobalSetup]
    public void Setup()
    {
        var options = new CandleOptions();
        _book = new CandleBook(Universe.Create(Instruments), new CandleSession(options, includeOutsideSession: false), TimeProvider.System);
        for (var id = 0; id < Instruments; id++)
        {
            _book.Observe(new Tick(id, 100, 1, SessionUs, 0, PriceSource.Live));
        }

        _clockUs = _dayUs = SessionUs;
    }

    /// <summary>Same bar at every interval: high, low, close and volume move; nothing else happens.</summary>
    [Benchmark]
    public void Observe_InsideTheFormingBars()
    {
        var id = _next++ % Instruments;
        _book.Observe(new Tick(id, 100 + (id & 7), ++_volume, SessionUs + 1_000_000, 0, PriceSource.Live));
    }

    /// <summary>Each tick a second later than the one before (all instruments): 1-minute bars roll over as the session goes by.</summary>
    [Benchmark]
    public void Observe_ThroughTheSession_RollingOver()
    {
        var id = _next++ % Instruments;
        if (id == 0)
        {
            _clockUs += 1_000_000;
            if (_clockUs - _dayUs > 5 * CandleIntervals.LengthUs[3])
            {
                // 10:00-15:00 of one day, then of the next: every tick stays inside a session.
                _dayUs += CandleIntervals.DayUs;
                _clockUs = _dayUs;
            }
        }

        _book.Observe(new Tick(id, 100 + (id & 7), ++_volume, _clockUs, 0, PriceSource.Live));
        if (id == Instruments - 1)
        {
            // The service's side, off the tick path: closed bars are taken away as they would be each pass.
            while (_book.TryTakeClosed(out _))
            {
            }
        }
    }
}
