using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;
using PriceDaemon.Pipeline;
using PriceDaemon.Sockets;
using PriceDaemon.Sockets.Send;

namespace PriceDaemon.Benchmarks.Micro;

/// <summary>
/// One socket's send pass for one new price, the common case of a socket that keeps up (a pass per frame): the mark,
/// the pass (control frames, flow-control checks, the cached frame, the sequence check, the batch) and a write the
/// sink takes at once. The pump is stopped, so the pass runs inline on the benchmark's thread. Each operation caches
/// a new <see cref="PriceFrame"/> over shared bytes (96 B: the throttle's allocation, made here), because the pass
/// writes a frame only when its seq is newer than the socket's last.
/// </summary>
[MemoryDiagnoser]
public class SendPassBenchmarks
{
    private const int Instruments = 10;

    private SendPump _pump = null!;
    private PriceCache _cache = null!;
    private SocketSender _sender = null!;
    private Subscription[] _subscriptions = null!;
    private byte[][] _utf8 = null!;
    private long _seq;
    private int _next;

    [GlobalSetup(Target = nameof(Pass_OneFramePerWrite))]
    public void Setup() => Setup(timing: false);

    [GlobalSetup(Target = nameof(Pass_OneFramePerWrite_Timing))]
    public void SetupTiming() => Setup(timing: true);

    [GlobalCleanup]
    public void Cleanup() => _pump.Dispose();

    [Benchmark]
    public void Pass_OneFramePerWrite() => OfferNext();

    /// <summary>The socket asked for <c>"timing": true</c>: each new frame builds its timed variant once (about 260 B).</summary>
    [Benchmark]
    public void Pass_OneFramePerWrite_Timing() => OfferNext();

    private void OfferNext()
    {
        var id = _next;
        _next = id + 1 == Instruments ? 0 : id + 1;
        var frame = new PriceFrame(id, ++_seq, 2451.55, 15_000, 1_768_818_600_123_456, 0.03, 2450, PriceSource.Simulated, false, TimeProvider.System.GetTimestamp(), _utf8[id]);
        _cache.Set(frame);
        _subscriptions[id].Offer(frame);
    }

    private void Setup(bool timing)
    {
        var instruments = Universe.Create(Instruments);
        var encoder = new FrameEncoder();
        _utf8 = Enumerable.Range(0, Instruments).Select(i => encoder.Encode(instruments[i], Universe.Tick(i, 2451.55, 15_000), 1, 2450).Utf8.ToArray()).ToArray();
        _cache = new PriceCache(instruments);
        _pump = new SendPump(1);
        _pump.Dispose(); // stopped: a scheduled pass runs at once on the caller's thread
        var services = new SessionServices(
            instruments, new SubscriptionIndex(instruments), _cache, new FeedStatus(), new PipelineMetrics(new BenchmarkMeterFactory()),
            Options.Create(new LimitsOptions()), TimeProvider.System, NullLoggerFactory.Instance, new NoUpstreamInterest(), _pump);
        _sender = new SocketSender(1, "benchmark", new NullSink(), static () => { }, services);
        SetTiming(_sender, timing);
        _subscriptions = Enumerable.Range(0, Instruments).Select(_sender.Add).ToArray();
    }

    private static void SetTiming(SocketSender sender, bool timing) => sender.Timing = timing;

    /// <summary>A socket whose kernel buffer always has room.</summary>
    private sealed class NullSink : IFrameSink
    {
        public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes) => ValueTask.CompletedTask;

        public void Cancel()
        {
        }
    }
}
