using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PriceDaemon.Alerts;
using PriceDaemon.Feeds;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Benchmarks.Micro;

/// <summary>
/// What alerts add to every tick (issue 18): <see cref="AlertBook.Observe"/> with 0, 1,000 and 100,000 armed alerts over
/// 2,000 instruments, the ticks moving the price without crossing a line (the common case: a tick that fires nothing
/// must cost the same whatever the number of alerts), and the volume watch's per-tick count. Allocation-free:
/// MemoryDiagnoser must report no bytes.
/// </summary>
[MemoryDiagnoser]
public class AlertEvaluationBenchmarks
{
    private const int Instruments = 2_000;

    [Params(0, 1_000, 100_000)]
    public int Alerts { get; set; }

    private AlertBook _book = null!;
    private VolumeWatch _volume = null!;
    private Tick[] _ticks = null!;
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        var instruments = Universe.Create(Instruments);
        var options = Options.Create(new AlertOptions { QueueCapacity = 1_000_000 });
        _book = new AlertBook(instruments, new PriceCache(instruments), options, TimeProvider.System, NullLogger<AlertBook>.Instance);
        _volume = new VolumeWatch(instruments, options, NullLogger<VolumeWatch>.Instance);
        var random = new Random(18);
        var conditions = new[] { AlertCondition.Above, AlertCondition.Below, AlertCondition.CrossesUp, AlertCondition.CrossesDown };
        for (var i = 0; i < Alerts; i++)
        {
            var id = i % Instruments;
            var condition = conditions[random.Next(conditions.Length)];
            // Lines 5-50 % away from 100: the ticks below (99-101) reach none of them.
            var distance = 5 + (random.NextDouble() * 45);
            var price = AlertConditions.IsUpward(condition) ? 100 + distance : 100 - distance;
            var alert = new Alert($"al-{i}", $"user-{i % 5_000}", ownedByConnection: true, id, instruments[id].Key, condition, price, repeat: false, "", DateTimeOffset.UnixEpoch);
            if (_book.TryAdd(alert, out _) is { } refused)
            {
                throw new InvalidOperationException(refused);
            }
        }

        _ticks = new Tick[Instruments * 4];
        for (var i = 0; i < _ticks.Length; i++)
        {
            _ticks[i] = new Tick(i % Instruments, 99 + (random.NextDouble() * 2), 1_000 + i, 1_768_818_600_000_000 + (i * 1_000L), 0, PriceSource.Simulated);
        }
    }

    [Benchmark]
    public void Observe_FiresNothing()
    {
        _book.Observe(in _ticks[_next]);
        _next = (_next + 1) % _ticks.Length;
    }

    [Benchmark]
    public void VolumeWatch_Observe()
    {
        _volume.Observe(in _ticks[_next]);
        _next = (_next + 1) % _ticks.Length;
    }
}
