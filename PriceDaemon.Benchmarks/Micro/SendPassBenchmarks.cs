using System.Net;
using System.Net.Sockets;
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

    // Enough sockets that one's state has left the core's caches by the time its turn comes again, as in campus-peak's round.
    private const int RoundSockets = 1_000;

    private SendPump _pump = null!;
    private PriceCache _cache = null!;
    private SessionServices _services = null!;
    private Subscription[][] _subscriptions = null!;
    private byte[][] _utf8 = null!;
    private long _seq;
    private int _next;
    private int _nextSocket;
    private Socket? _server;
    private Socket? _client;
    private Thread? _reader;

    [GlobalSetup(Target = nameof(Pass_OneFramePerWrite))]
    public void Setup() => Setup(timing: false, sockets: 1, sink: static () => new NullSink());

    [GlobalSetup(Target = nameof(Pass_OneFramePerWrite_Timing))]
    public void SetupTiming() => Setup(timing: true, sockets: 1, sink: static () => new NullSink());

    [GlobalSetup(Target = nameof(Pass_OneFramePerWrite_RoundOf1000))]
    public void SetupRound() => Setup(timing: false, sockets: RoundSockets, sink: static () => new NullSink());

    [GlobalSetup(Target = nameof(Pass_OneFramePerWrite_LoopbackSocket))]
    public void SetupSocket()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        _client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _client.Connect(listener.LocalEndpoint);
        _server = listener.AcceptSocket();
        _server.NoDelay = true; // as Kestrel sets it
        var client = _client;
        _reader = new Thread(() => Drain(client)) { IsBackground = true, Name = "benchmark-reader" };
        _reader.Start();
        var server = _server;
        Setup(timing: false, sockets: 1, sink: () => new SocketFrameSink(server));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pump.Dispose();
        _server?.Dispose();
        _reader?.Join();
        _client?.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void Pass_OneFramePerWrite() => OfferNext(0);

    /// <summary>The socket asked for <c>"timing": true</c>: each new frame builds its timed variant once (about 260 B).</summary>
    [Benchmark]
    public void Pass_OneFramePerWrite_Timing() => OfferNext(0);

    /// <summary>
    /// 1,000 sockets in turn, a frame each, as the send thread visits them in campus-peak: what the pass costs when the
    /// socket's state (sender, marks, slots, locks) comes from memory rather than from the core's cache.
    /// </summary>
    [Benchmark]
    public void Pass_OneFramePerWrite_RoundOf1000()
    {
        var socket = _nextSocket;
        _nextSocket = socket + 1 == RoundSockets ? 0 : socket + 1;
        OfferNext(socket);
    }

    /// <summary>
    /// The direct path's sink over a real loopback connection (the daemon's <see cref="SocketFrameSink"/>; a thread
    /// reads the other end): the pass and the write's system call, which includes loopback's receive-side TCP work.
    /// </summary>
    [Benchmark]
    public void Pass_OneFramePerWrite_LoopbackSocket() => OfferNext(0);

    private static void Drain(Socket client)
    {
        var buffer = new byte[256 * 1024];
        try
        {
            while (client.Receive(buffer) > 0)
            {
            }
        }
        catch (SocketException)
        {
            // The benchmark's end closed the server side.
        }
    }

    private void OfferNext(int socket)
    {
        var id = _next;
        _next = id + 1 == Instruments ? 0 : id + 1;
        var frame = new PriceFrame(id, ++_seq, 2451.55, 15_000, 1_768_818_600_123_456, 0.03, 2450, PriceSource.Simulated, false, TimeProvider.System.GetTimestamp(), _utf8[id]);
        _cache.Set(frame);
        _subscriptions[socket][id].Offer(frame);
    }

    private void Setup(bool timing, int sockets, Func<IFrameSink> sink)
    {
        var instruments = Universe.Create(Instruments);
        var encoder = new FrameEncoder();
        _utf8 = Enumerable.Range(0, Instruments).Select(i => encoder.Encode(instruments[i], Universe.Tick(i, 2451.55, 15_000), 1, 2450).Utf8.ToArray()).ToArray();
        _cache = new PriceCache(instruments);
        _pump = new SendPump(1);
        _pump.Dispose(); // stopped: a scheduled pass runs at once on the caller's thread
        _services = new SessionServices(
            instruments, new SubscriptionIndex(instruments), _cache, new FeedStatus(), new PipelineMetrics(new BenchmarkMeterFactory()),
            Options.Create(new LimitsOptions()), TimeProvider.System, NullLoggerFactory.Instance, new NoUpstreamInterest(), _pump);
        _subscriptions = new Subscription[sockets][];
        for (var i = 0; i < sockets; i++)
        {
            var sender = new SocketSender(i + 1, "benchmark", sink(), static () => { }, _services);
            SetTiming(sender, timing);
            _subscriptions[i] = Enumerable.Range(0, Instruments).Select(sender.Add).ToArray();
        }
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
