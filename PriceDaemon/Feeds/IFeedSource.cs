using System.Threading.Channels;

namespace PriceDaemon.Feeds;

/// <summary>A source of ticks. It runs until its stopping token fires and reports its state to <see cref="FeedStatus"/>.</summary>
public interface IFeedSource
{
    Task RunAsync(ChannelWriter<Tick> ticks, CancellationToken stoppingToken);
}
