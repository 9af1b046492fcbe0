using System.Threading.Channels;

namespace PriceDaemon.Pipeline;

/// <summary>
/// Offers each emitted frame to every subscription of its instrument. Never awaits a socket: an offer marks
/// the subscription's slot in its socket's ready marks (one interlocked OR) and, when the socket had nothing
/// ready, queues one send pass.
/// </summary>
public sealed partial class FanOutStage : BackgroundService
{
    // Emitted updates waiting for fan-out. Wait mode: if fan-out (CPU only) falls behind, the throttle stage
    // waits, and through it the feeds; nothing is dropped on the way to the sockets' ready marks.
    private readonly Channel<PriceFrame> _frames = Channel.CreateBounded<PriceFrame>(new BoundedChannelOptions(16_384)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = true,
        SingleWriter = true,
        AllowSynchronousContinuations = false,
    });

    private readonly SubscriptionIndex _index;
    private readonly ILogger<FanOutStage> _logger;
    private long _fannedOut;

    public FanOutStage(SubscriptionIndex index, ILogger<FanOutStage> logger)
    {
        _index = index;
        _logger = logger;
    }

    public ChannelWriter<PriceFrame> Writer => _frames.Writer;

    /// <summary>
    /// Frames taken from the channel and published. The throttle's pool reuses a frame only once this has passed
    /// its ticket: a frame waiting here is read outside any read scope.
    /// </summary>
    internal long FannedOut => Volatile.Read(ref _fannedOut);

    // Awaits below resume on the stage's own thread (see DedicatedThread), so no ConfigureAwait(false).
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        DedicatedThread.Run("pricedaemon-fan-out", () => RunAsync(stoppingToken));

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        var reader = _frames.Reader;
        // The token is registered once (it completes the channel, which wakes the loop): waiting with a cancelable
        // token allocates a waiter each time the loop goes idle; without one the channel reuses its own.
        using var stop = stoppingToken.UnsafeRegister(static s => ((Channel<PriceFrame>)s!).Writer.TryComplete(), _frames);
        try
        {
            while (await reader.WaitToReadAsync())
            {
                stoppingToken.ThrowIfCancellationRequested();
                while (reader.TryRead(out var frame))
                {
                    Publish(frame);
                    // Release: the reads of the frame above come before the pool may refill it.
                    Volatile.Write(ref _fannedOut, _fannedOut + 1);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>The whole fan-out of one update; public so benchmarks measure exactly this.</summary>
    public void Publish(PriceFrame frame)
    {
        var subscriptions = _index.Get(frame.InstrumentId);
        LogBroadcast(frame.InstrumentId, frame.Seq, subscriptions.Length);
        for (var i = 0; i < subscriptions.Length; i++)
        {
            subscriptions[i].Offer(frame);
        }
    }

    // Verbose only: one line per update would drown any real log at Information.
    [LoggerMessage(EventId = 200, Level = LogLevel.Trace, Message = "Broadcasting price update: instrument {InstrumentId} seq {Seq} to {Subscribers} sockets")]
    private partial void LogBroadcast(int instrumentId, long seq, int subscribers);
}
