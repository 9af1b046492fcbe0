using BenchmarkDotNet.Attributes;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Benchmarks.Micro;

/// <summary>
/// Serializing one emitted order book: the <c>depth</c> frame (5 levels a side) and the <c>book</c> frame (30), each
/// once per emitted update whatever the number of subscribers. One exact-size array per frame is the expected allocation.
/// </summary>
[MemoryDiagnoser]
public class DepthEncodingBenchmarks
{
    private readonly DepthEncoder _encoder = new(microseconds: true);
    private Instrument _instrument = null!;
    private DepthBook _book = null!;

    [GlobalSetup]
    public void Setup()
    {
        _instrument = Universe.Create(1)[0];
        _book = SimulatedFeed.Book(new Random(42), 0, 2451.55, 1_768_795_200_123_456, 0);
        if (_book.Bids.Length < DepthBook.DepthLevels)
        {
            throw new InvalidOperationException("the simulated book is too shallow for this benchmark");
        }
    }

    [Benchmark(Baseline = true)]
    public DepthFrame Depth5() => _encoder.Encode(_instrument, _book, 42, full: false);

    [Benchmark]
    public DepthFrame Book30() => _encoder.Encode(_instrument, _book, 42, full: true);
}
