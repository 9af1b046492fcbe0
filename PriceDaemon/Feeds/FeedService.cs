using System.Threading.Channels;

namespace PriceDaemon.Feeds;

/// <summary>
/// Runs the configured feed source into the ingest channel until the host stops. It is the only writer of
/// ticks: once its <see cref="BackgroundService.StopAsync"/> has returned, no feed writes again, and the
/// throttle stage may complete the channel and read it to the end.
/// </summary>
internal sealed class FeedService : BackgroundService
{
    private readonly IFeedSource? _source;
    private readonly ChannelWriter<Tick> _ticks;

    public FeedService(IEnumerable<IFeedSource> sources, Pipeline.IngestChannel ingest)
    {
        _source = sources.FirstOrDefault();
        _ticks = ingest.Writer;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_source is null)
        {
            return;
        }

        try
        {
            await _source.RunAsync(_ticks, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Host shutdown.
        }
        catch (ChannelClosedException) when (stoppingToken.IsCancellationRequested)
        {
            // A source that outlived its stop timeout, writing after the ingest channel was completed.
        }
    }
}
