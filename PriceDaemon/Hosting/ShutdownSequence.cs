using PriceDaemon.Feeds;
using PriceDaemon.Pipeline;
using PriceDaemon.Sockets;
using PriceDaemon.Storage;

namespace PriceDaemon.Hosting;

/// <summary>
/// The daemon's stop order, declared here rather than implied by registration order. The host runs it in its
/// stopping phase (<see cref="IHostedLifecycleService.StoppingAsync"/>), before any hosted service's StopAsync,
/// so before Kestrel waits for open connections to end. New price sockets are refused from its first moment; then
/// (each step logged and passed if it fails):
/// <list type="number">
/// <item>the feed is cancelled and awaited, at most <see cref="FeedStopTimeout"/>: no tick is written after it;</item>
/// <item>the throttle stage completes the ingest channel, reads it to the end and emits every pending update into
/// the cache and to fan-out, which still runs (a stuck fan-out is given up on after
/// <see cref="ThrottleStage.FanOutDrainTimeout"/>);</item>
/// <item>storage writes its last batch, which holds those updates, and marks the file clean (only if the throttle
/// finished; at most <see cref="StorageStopTimeout"/> is waited for it);</item>
/// <item>fan-out, whose input the throttle completed, publishes what it holds and ends (at most
/// <see cref="ThrottleStage.FanOutDrainTimeout"/>);</item>
/// <item>every socket is closed with 1001 "server shutting down", its marked prices written ahead of the close.</item>
/// </list>
/// All of it is bounded by the host's stop timeout. The host then stops every hosted service in reverse
/// registration order: Kestrel first, which waits for the closing sockets; the services above have stopped
/// already, and stopping them again does nothing.
/// </summary>
internal sealed partial class ShutdownSequence : IHostedLifecycleService
{
    // Feeds stop at once when cancelled; one that does not is left behind so the rest of the stop still has time.
    private static readonly TimeSpan FeedStopTimeout = TimeSpan.FromSeconds(3);

    // A write to a healthy disk takes milliseconds; past this the sockets are closed without waiting for it.
    private static readonly TimeSpan StorageStopTimeout = TimeSpan.FromSeconds(4);

    private readonly FeedService _feed;
    private readonly ThrottleStage _throttle;
    private readonly FanOutStage _fanOut;
    private readonly StorageService _storage;
    private readonly SessionRegistry _sessions;
    private readonly TimeProvider _time;
    private readonly ILogger<ShutdownSequence> _logger;

    public ShutdownSequence(
        FeedService feed,
        ThrottleStage throttle,
        FanOutStage fanOut,
        StorageService storage,
        SessionRegistry sessions,
        TimeProvider time,
        ILogger<ShutdownSequence> logger)
    {
        _feed = feed;
        _throttle = throttle;
        _fanOut = fanOut;
        _storage = storage;
        _sessions = sessions;
        _time = time;
        _logger = logger;
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        // New sockets are refused (503) from the first moment: one accepted now would only be closed at the end.
        _sessions.StopAccepting();
        try
        {
            await Step("feed", async () =>
            {
                using var feedTimeout = new CancellationTokenSource(FeedStopTimeout, _time);
                using var feedStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, feedTimeout.Token);
                await _feed.StopAsync(feedStop.Token).ConfigureAwait(false);
                if (_feed.ExecuteTask is { IsCompleted: false })
                {
                    LogFeedStopOverdue(FeedStopTimeout.TotalSeconds);
                }
            }).ConfigureAwait(false);

            await Step("throttle", async () =>
            {
                await _throttle.StopAsync(cancellationToken).ConfigureAwait(false);
                if (_throttle.ExecuteTask is { IsCompleted: false })
                {
                    // Still emitting (its drain outlasted the stop budget): seqs may still grow after the last
                    // flush, so the file must not say the stop was clean.
                    _storage.PipelineNotDrained();
                }
            }).ConfigureAwait(false);

            // Bounded on its own: a stalled disk must not eat the time the sockets need to close cleanly. The
            // storage loop goes on alone and still writes its last batch if it gets the chance.
            await Step("storage", async () =>
            {
                using var storageTimeout = new CancellationTokenSource(StorageStopTimeout, _time);
                using var storageStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, storageTimeout.Token);
                await _storage.StopAsync(storageStop.Token).ConfigureAwait(false);
            }).ConfigureAwait(false);

            await Step("fan-out", async () =>
            {
                if (_fanOut.ExecuteTask is { IsCompleted: false } fanOut)
                {
                    await fanOut.WaitAsync(ThrottleStage.FanOutDrainTimeout, _time, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }
            }).ConfigureAwait(false);
        }
        finally
        {
            // Whatever happened above: Kestrel's stop, next, waits for every open connection to end.
            _sessions.CloseAll();
        }
    }

    /// <summary>One step of the stop: a failure is logged and the next step still runs.</summary>
    private async Task Step(string name, Func<Task> step)
    {
        try
        {
            await step().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogStepFailed(name, ex);
        }
        catch (OperationCanceledException)
        {
            // The host's stop budget ran out: the remaining steps still get their (immediate) turn.
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 21, Level = LogLevel.Error, Message = "Stopping: the {Step} step failed; the stop goes on")]
    private partial void LogStepFailed(string step, Exception error);

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "Stopping: the feed did not stop within {Seconds} s; ticks it writes from now on are dropped")]
    private partial void LogFeedStopOverdue(double seconds);
}
