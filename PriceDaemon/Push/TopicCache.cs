using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Push;

/// <summary>One value of a topic: <c>{"type":"topic","topic":"leaderboard","seq":4,"data":{...}}</c>.</summary>
internal sealed class TopicFrame(long seq, byte[] utf8) : StreamFrame(seq, 0, utf8);

/// <summary>
/// The configured topics' last values, and who subscribes to each. Setting a value serializes it once, keeps it as
/// the topic's latest and marks each subscriber's slot: a send pass then writes the latest value if it is newer than
/// what that socket last got, exactly as for prices. A socket that falls behind holds one value per topic (latest
/// wins) and never gets an older value after a newer one. Held in memory: a restart starts every topic empty.
/// </summary>
internal sealed class TopicCache : IFrameSource
{
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private readonly string[] _names;
    private readonly bool[] _anonymous;
    private readonly TopicFrame?[] _latest;
    private readonly Subscription[][] _subscribers;
    private readonly long[] _seq;
    private readonly Lock _lock = new(); // orders versions of a topic and changes to subscriber arrays

    internal long Updates;

    public TopicCache(IOptions<PushOptions> options, IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(PipelineMetrics.MeterName);
        meter.CreateObservableCounter("pricedaemon.topics.updates", () => Volatile.Read(ref Updates), "{update}", "Topic values set by the backend");
        var topics = options.Value.Topics;
        _names = [.. topics.Select(static t => t.Name)];
        _anonymous = [.. topics.Select(static t => t.AllowAnonymous)];
        for (var i = 0; i < _names.Length; i++)
        {
            _ids[_names[i]] = i;
        }

        _latest = new TopicFrame?[_names.Length];
        _seq = new long[_names.Length];
        _subscribers = [.. _names.Select(static _ => Array.Empty<Subscription>())];
    }

    public IReadOnlyList<string> Names => _names;

    public bool TryGet(string name, out int id, out bool allowAnonymous)
    {
        if (_ids.TryGetValue(name, out id))
        {
            allowAnonymous = _anonymous[id];
            return true;
        }

        allowAnonymous = false;
        return false;
    }

    public string Name(int id) => _names[id];

    public StreamFrame? Latest(int key) => Volatile.Read(ref _latest[key]);

    /// <summary>Sets the topic's value (its JSON text) and offers it to every subscriber; returns its seq.</summary>
    public long Set(int id, string data)
    {
        TopicFrame frame;
        lock (_lock)
        {
            var seq = ++_seq[id];
            frame = new TopicFrame(seq, PushFrames.Topic(_names[id], seq, data));
            Interlocked.Exchange(ref _latest[id], frame); // a full fence before OfferToSubscribers reads the array
        }

        OfferToSubscribers(id, frame);
        return frame.Seq;
    }

    private void OfferToSubscribers(int id, TopicFrame frame)
    {
        Interlocked.Increment(ref Updates);
        // Read after the value is published: a subscriber added since either is in this array or reads the value itself.
        foreach (var subscription in Volatile.Read(ref _subscribers[id]))
        {
            subscription.Offer(frame);
        }
    }

    /// <summary>
    /// A shared topic (NATS): sets the value the bucket holds at revision <paramref name="seq"/>, the same seq on every
    /// daemon; false (nothing offered) when this daemon has that revision or a newer one already.
    /// </summary>
    public bool SetAt(int id, string data, long seq)
    {
        TopicFrame frame;
        lock (_lock)
        {
            if (seq <= _seq[id])
            {
                return false;
            }

            _seq[id] = seq;
            frame = new TopicFrame(seq, PushFrames.Topic(_names[id], seq, data));
            Interlocked.Exchange(ref _latest[id], frame); // a full fence before OfferToSubscribers reads the array
        }

        OfferToSubscribers(id, frame);
        return true;
    }

    /// <summary>Receive loop: from now on each new value of the topic is offered to <paramref name="subscription"/>.</summary>
    public void Subscribe(Subscription subscription)
    {
        var id = subscription.InstrumentId;
        lock (_lock)
        {
            _subscribers[id] = [.. _subscribers[id], subscription];
        }
    }

    /// <summary>Receive loop, after <see cref="Subscribe"/>: offers the topic's current value, if it has one.</summary>
    public void OfferCurrent(Subscription subscription)
    {
        if (Latest(subscription.InstrumentId) is { } current)
        {
            subscription.Offer(current);
        }
    }

    public void Unsubscribe(Subscription subscription)
    {
        var id = subscription.InstrumentId;
        lock (_lock)
        {
            _subscribers[id] = Array.FindAll(_subscribers[id], s => s != subscription);
        }
    }

    public int Subscribers(int id) => Volatile.Read(ref _subscribers[id]).Length;
}
