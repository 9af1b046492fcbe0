using BenchmarkDotNet.Attributes;
using PriceDaemon.Pipeline;
using PriceDaemon.Sockets.Send;

namespace PriceDaemon.Benchmarks.Micro;

/// <summary>
/// One update offered to every subscription of its instrument. Sessions that keep up take each mark as
/// soon as it is made; sessions that are behind have their slot marked already, so the offer conflates.
/// Neither path may allocate.
/// </summary>
[MemoryDiagnoser]
public class FanOutBenchmarks
{
    private FanOutStage _stage = null!;
    private PriceFrame _frame = null!;

    [Params(10, 1_000, 10_000)]
    public int Sessions { get; set; }

    [GlobalSetup(Target = nameof(Publish_KeepingUpSessions))]
    public void SetupKeepingUp() => Setup(drains: true);

    [GlobalSetup(Target = nameof(Publish_BehindSessions))]
    public void SetupBehind() => Setup(drains: false);

    [GlobalCleanup]
    public void Cleanup() => _stage.Dispose();

    [Benchmark]
    public void Publish_KeepingUpSessions() => _stage.Publish(_frame);

    [Benchmark]
    public void Publish_BehindSessions() => _stage.Publish(_frame);

    private void Setup(bool drains)
    {
        var instruments = Universe.Create(1);
        var index = new SubscriptionIndex(instruments);
        for (var i = 0; i < Sessions; i++)
        {
            index.Add(new Subscription(new InMemorySession(drains), 0));
        }

        _stage = new FanOutStage(index, Microsoft.Extensions.Logging.Abstractions.NullLogger<FanOutStage>.Instance);
        _frame = new FrameEncoder(microseconds: true).Encode(instruments[0], Universe.Tick(0, 2451.55, 15_000), 1, 2450);
    }

    /// <summary>A session with no socket: it marks the slot as the daemon's does, and takes the mark at once (keeping up) or never (behind).</summary>
    private sealed class InMemorySession : ISubscriber
    {
        private readonly ReadySlots _ready = new(1);
        private readonly bool _drains;

        public InMemorySession(bool drains)
        {
            _drains = drains;
        }

        public void Offered(Subscription subscription, StreamFrame frame)
        {
            if (_ready.Mark(subscription.Slot) && _drains)
            {
                _ready.Take(0);
            }
        }
    }
}
