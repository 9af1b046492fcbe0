using System.Threading.Channels;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;

namespace PriceDaemon.Pipeline;

/// <summary>
/// The bounded channel every feed writes ticks into; the throttle stage is its only reader.
/// Full mode is Wait: a feed that outruns the pipeline is slowed down rather than losing ticks,
/// because a dropped tick could be the last price of the day for its instrument. For the same reason it is
/// drained at shutdown: once the feed has stopped, the throttle stage completes it and reads it to the end.
/// </summary>
public sealed class IngestChannel
{
    private readonly Channel<Tick> _channel;

    public IngestChannel(IOptions<FeedOptions> options)
    {
        _channel = Channel.CreateBounded<Tick>(new BoundedChannelOptions(options.Value.IngestCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = false,
            AllowSynchronousContinuations = false,
        });
    }

    public ChannelWriter<Tick> Writer => _channel.Writer;

    internal ChannelReader<Tick> Reader => _channel.Reader;
}
