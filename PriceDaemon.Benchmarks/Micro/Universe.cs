using PriceDaemon.Feeds;
using PriceDaemon.Instruments;

namespace PriceDaemon.Benchmarks.Micro;

/// <summary>Instruments and ticks shaped like the daemon's synthetic load-run universe.</summary>
internal static class Universe
{
    public static InstrumentRegistry Create(int count) => InstrumentRegistry.Load(
        new StringReader("instrument_key,symbol,name,reference_price\n"), "benchmark", count);

    public static Tick Tick(int instrumentId, double price, long volume) =>
        new(instrumentId, price, volume, 1_768_818_600_123_456, 0, PriceSource.Simulated);
}
