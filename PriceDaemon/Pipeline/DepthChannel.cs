namespace PriceDaemon.Pipeline;

/// <summary>
/// One market-data channel beside prices (<c>depth</c> or <c>book</c>): each instrument's newest frame and who
/// subscribes to it. Publishing a frame keeps it as the latest and marks each subscriber's slot; a send pass writes
/// the latest frame if it is newer than what that socket last got, exactly as for prices and topics, so a slow socket
/// holds one book per instrument and never gets an older book after a newer one.
/// </summary>
public sealed class DepthChannel : IFrameSource
{
    private readonly DepthFrame?[] _latest;
    private readonly Subscription[][] _subscribers;
    private readonly Lock _lock = new(); // changes to subscriber arrays

    internal DepthChannel(string name, int instruments)
    {
        Name = name;
        _latest = new DepthFrame?[instruments];
        _subscribers = new Subscription[instruments][];
        Array.Fill(_subscribers, []);
    }

    /// <summary>The channel's name in subscribe messages, acks and frames' <c>type</c>.</summary>
    public string Name { get; }

    public StreamFrame? Latest(int key) => Volatile.Read(ref _latest[key]);

    public DepthFrame? Get(int instrumentId) => Volatile.Read(ref _latest[instrumentId]);

    public int Subscribers(int instrumentId) => Volatile.Read(ref _subscribers[instrumentId]).Length;

    /// <summary>Depth stage: the instrument's newest frame, offered to every subscriber.</summary>
    internal void Publish(DepthFrame frame)
    {
        var id = frame.InstrumentId;
        // A full fence (not a release store): the subscriber array is read after the frame is visible, so a subscriber
        // added since either is in this array or reads the frame itself. A plain store could pass the load below.
        Interlocked.Exchange(ref _latest[id], frame);
        foreach (var subscription in Volatile.Read(ref _subscribers[id]))
        {
            subscription.Offer(frame);
        }
    }

    /// <summary>Receive loop: from now on each new frame of the instrument is offered to <paramref name="subscription"/>.</summary>
    internal void Subscribe(Subscription subscription)
    {
        var id = subscription.InstrumentId;
        lock (_lock)
        {
            _subscribers[id] = [.. _subscribers[id], subscription];
        }
    }

    internal void Unsubscribe(Subscription subscription)
    {
        var id = subscription.InstrumentId;
        lock (_lock)
        {
            _subscribers[id] = Array.FindAll(_subscribers[id], s => s != subscription);
        }
    }
}
