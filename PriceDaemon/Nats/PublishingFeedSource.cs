using System.Threading.Channels;
using PriceDaemon.Feeds;

namespace PriceDaemon.Nats;

/// <summary>
/// Taps the configured feed where its ticks enter the pipeline: each tick the ingest channel accepts is also offered to
/// the <see cref="NatsPublisher"/>. Tapped before the throttle on purpose: edges get every tick and apply their own
/// throttle window (so the NATS hop runs in parallel with the ingest's window instead of after it), and the pipeline's
/// stages need no change. The offer never waits, so the feed is never slowed by NATS.
/// </summary>
internal sealed class PublishingFeedSource : IFeedSource
{
    private readonly IFeedSource _inner;
    private readonly NatsPublisher _publisher;

    private readonly Pipeline.DepthIngest? _depth;

    public PublishingFeedSource(IFeedSource inner, NatsPublisher publisher, Pipeline.DepthIngest? depth = null)
    {
        _inner = inner;
        _publisher = publisher;
        _depth = depth;
    }

    public Task RunAsync(ChannelWriter<Tick> ticks, CancellationToken stoppingToken)
    {
        // Books the feed produces go out on the same subjects (BookCodec), tapped where they enter the depth stage.
        _depth?.AddTap(_publisher.OfferBook);
        return _inner.RunAsync(new TapWriter(ticks, _publisher), stoppingToken);
    }

    private sealed class TapWriter : ChannelWriter<Tick>
    {
        private readonly ChannelWriter<Tick> _ingest;
        private readonly NatsPublisher _publisher;

        public TapWriter(ChannelWriter<Tick> ingest, NatsPublisher publisher)
        {
            _ingest = ingest;
            _publisher = publisher;
        }

        public override bool TryWrite(Tick item)
        {
            if (!_ingest.TryWrite(item))
            {
                return false;
            }

            _publisher.Offer(item);
            return true;
        }

        public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) =>
            _ingest.WaitToWriteAsync(cancellationToken);

        public override async ValueTask WriteAsync(Tick item, CancellationToken cancellationToken = default)
        {
            await _ingest.WriteAsync(item, cancellationToken).ConfigureAwait(false);
            _publisher.Offer(item);
        }

        public override bool TryComplete(Exception? error = null) => _ingest.TryComplete(error);
    }
}
