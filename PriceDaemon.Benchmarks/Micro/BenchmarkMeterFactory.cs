using System.Diagnostics.Metrics;

namespace PriceDaemon.Benchmarks.Micro;

/// <summary>A real <see cref="IMeterFactory"/> for stages built outside a host; the meters live as long as the benchmark.</summary>
internal sealed class BenchmarkMeterFactory : IMeterFactory
{
    private readonly List<Meter> _meters = [];

    public Meter Create(MeterOptions options)
    {
        var meter = new Meter(options);
        _meters.Add(meter);
        return meter;
    }

    public void Dispose()
    {
        foreach (var meter in _meters)
        {
            meter.Dispose();
        }
    }
}
