using System.Diagnostics.Metrics;

namespace PriceDaemon.Tests.Support;

/// <summary>A real <see cref="IMeterFactory"/> for stages built outside a host.</summary>
internal sealed class TestMeterFactory : IMeterFactory
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
