using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Candles;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Storage;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Candles;

/// <summary>
/// The candle service's pass reads only the instruments ticks changed, and still closes by time the bars of
/// instruments that stopped ticking: a full walk happens when the exchange clock passes the earliest forming bar's end.
/// The real book and service, passes called directly on a <see cref="FakeTimeProvider"/>.
/// </summary>
public sealed class CandlePassTests
{
    private const int Instruments = 500;

    // Monday 2026-11-30 09:30:00 IST.
    private static readonly DateTimeOffset Start = new(2026, 11, 30, 9, 30, 0, TimeSpan.FromHours(5.5));

    private static long Us(TimeSpan sinceStart) => (Start + sinceStart).ToUnixTimeMilliseconds() * 1000;

    [Test]
    public void Pass_VisitsOnlyChangedInstruments_AndStillClosesTheBarsOfThoseThatStoppedTicking()
    {
        var time = new FakeTimeProvider(Start);
        var registry = new InstrumentRegistry(Enumerable.Range(0, Instruments).Select(i => ($"NSE_EQ|P{i:D4}", $"P{i}", $"P {i}", 100.0 + i)));
        var options = new CandleOptions();
        var book = new CandleBook(registry, new CandleSession(options, includeOutsideSession: false), time);
        using var meters = new TestMeterFactory();
        var service = new CandleService(
            book, Options.Create(options), Options.Create(new StorageOptions()), Options.Create(new ThrottleOptions { MinIntervalMs = 100 }),
            time, NullLogger<CandleService>.Instance, meters, []);

        for (var id = 0; id < Instruments; id++)
        {
            book.Observe(new Tick(id, 100, 1_000 + id, Us(TimeSpan.FromSeconds(5)), 0, PriceSource.Live));
        }

        service.Pass();
        Assert.That(service.Visited, Is.EqualTo(Instruments), "the first pass with an exchange clock walks everything once");

        book.Observe(new Tick(7, 101, 2_000, Us(TimeSpan.FromSeconds(20)), 0, PriceSource.Live));
        book.Observe(new Tick(300, 99, 2_000, Us(TimeSpan.FromSeconds(21)), 0, PriceSource.Live));
        book.Observe(new Tick(7, 102, 2_100, Us(TimeSpan.FromSeconds(22)), 0, PriceSource.Live));
        service.Pass();
        Assert.That(service.Visited, Is.EqualTo(Instruments + 2), "two instruments ticked: two visits, not a walk of all");
        var bars = new Bar[CandleIntervals.Count];
        service.Pass();
        Assert.That(service.Visited, Is.EqualTo(Instruments + 2), "nothing ticked: no visit");

        // The exchange clock (the newest tick's time, advanced by the daemon's) passes 09:31 and the 1 s grace: every
        // instrument's 1-minute bar closes, the 498 that never ticked again as well.
        time.Advance(TimeSpan.FromSeconds(40));
        Assert.That(service.Closed, Is.Zero);
        service.Pass();
        Assert.That(service.Closed, Is.EqualTo(Instruments));
        book.Read(123, bars, out _, out _);
        Assert.That(bars[0].Forming, Is.False, "a quiet instrument's minute bar is closed by time");
        Assert.That(bars[1].Forming, Is.True, "its 5-minute bar runs to 09:35");

        // After that walk the earliest forming end is 09:35: passes before then visit nothing while nothing ticks.
        var visited = service.Visited;
        time.Advance(TimeSpan.FromMinutes(2));
        service.Pass();
        Assert.That(service.Visited, Is.EqualTo(visited));

        // A tick after the walk opens a new minute bar; the pass finds the instrument by its mark.
        book.Observe(new Tick(42, 105, 3_000, Us(TimeSpan.FromMinutes(2) + TimeSpan.FromSeconds(50)), 0, PriceSource.Live));
        service.Pass();
        Assert.That(service.Visited, Is.EqualTo(visited + 1));
        book.Read(42, bars, out _, out _);
        Assert.That((bars[0].Forming, bars[0].Close), Is.EqualTo((true, 105.0)));

        // And its new minute bar closes by time too, once the clock passes 09:33 (the others have no minute bar to close).
        var closed = service.Closed;
        time.Advance(TimeSpan.FromSeconds(15));
        service.Pass();
        Assert.That(service.Closed, Is.EqualTo(closed + 1));
    }
}
