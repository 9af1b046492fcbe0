using System.Collections.Frozen;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using NATS.Client.KeyValueStore;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Nats;

/// <summary>
/// <c>Feed:Source=Nats</c>, the edge's feed: subscribes to <see cref="NatsOptions.Subjects"/> and writes each tick into
/// the ingest channel, so the edge's own throttle, cache, storage and fan-out serve it like any feed. It also watches
/// the key-value bucket for the same subset and takes a last value when it is newer than what the edge has: that
/// repairs prices missed while NATS was down or dropped on the way. The NATS connection state is the feed status the
/// edge's clients see. Keys outside this daemon's instrument list are ignored and counted.
/// </summary>
internal sealed partial class NatsFeed : IFeedSource
{
    private const string ConnectedMessage = FeedStatus.ConnectedMessage + " (via NATS)";
    private static readonly TimeSpan RetryMin = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan RetryMax = TimeSpan.FromSeconds(10);

    private readonly NatsLink _link;
    private readonly NatsOptions _options;
    private readonly FeedStatus _status;
    private readonly FeedMetrics _feedMetrics;
    private readonly NatsMetrics _metrics;
    private readonly PriceCache _cache;
    private readonly TimeProvider _time;
    private readonly ILogger<NatsFeed> _logger;
    private readonly FrozenDictionary<string, int> _bySubject;
    private readonly FrozenDictionary<string, int> _byKvKey;
    private readonly long[] _lastTimeUs;
    // Orders "is it newer" and the write into the ingest channel between the live and the bucket paths.
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly DepthIngest? _depth;

    public NatsFeed(
        NatsLink link,
        IOptions<NatsOptions> options,
        InstrumentRegistry instruments,
        FeedStatus status,
        FeedMetrics feedMetrics,
        NatsMetrics metrics,
        PriceCache cache,
        TimeProvider time,
        ILogger<NatsFeed> logger,
        DepthIngest? depth = null)
    {
        _depth = depth;
        _link = link;
        _options = options.Value;
        _status = status;
        _feedMetrics = feedMetrics;
        _metrics = metrics;
        _cache = cache;
        _time = time;
        _logger = logger;
        _bySubject = instruments.All.ToFrozenDictionary(i => NatsSubjects.Subject(i.Key), i => i.Id, StringComparer.Ordinal);
        _byKvKey = instruments.All.ToFrozenDictionary(i => NatsSubjects.KvKey(i.Key), i => i.Id, StringComparer.Ordinal);
        _lastTimeUs = new long[instruments.Count];
    }

    public async Task RunAsync(ChannelWriter<Tick> ticks, CancellationToken stoppingToken)
    {
        // What the edge already shows (storage, bucket warm start): a bucket value must be newer than this to count.
        for (var id = 0; id < _lastTimeUs.Length; id++)
        {
            _lastTimeUs[id] = _cache.TryGetValues(id, out var cached) ? cached.TimestampUs : long.MinValue;
        }

        _link.StateChanged += OnStateChanged;
        try
        {
            _status.Report(FeedState.Disconnected, "Market data connecting (NATS)");
            _ = _link.ConnectAsync();
            if (_link.IsOpen)
            {
                OnStateChanged(true);
            }

            LogStarting(_options.Url, string.Join(", ", _options.SubjectFilters));
            var loops = _options.SubjectFilters.Select(f => SubscribeAsync(f, ticks, stoppingToken)).ToList();
            loops.Add(WatchBucketAsync(ticks, stoppingToken));
            await Task.WhenAll(loops).ConfigureAwait(false);
        }
        finally
        {
            _link.StateChanged -= OnStateChanged;
        }
    }

    private void OnStateChanged(bool open)
    {
        if (open)
        {
            _status.Report(FeedState.Connected, ConnectedMessage);
        }
        else
        {
            _status.Report(FeedState.Disconnected, FeedStatus.DisconnectedMessage);
        }
    }

    private async Task SubscribeAsync(string filter, ChannelWriter<Tick> ticks, CancellationToken ct)
    {
        // NATS.Net resubscribes after every reconnect; this enumeration only ends at shutdown.
        await foreach (var msg in _link.Connection.SubscribeAsync<ReadOnlyMemory<byte>>(filter, cancellationToken: ct).ConfigureAwait(false))
        {
            if (!_bySubject.TryGetValue(msg.Subject, out var id))
            {
                Interlocked.Increment(ref _feedMetrics.UnknownInstruments);
                continue;
            }

            if (msg.Data.Length > 0 && msg.Data.Span[0] == BookCodec.Version)
            {
                // An order book on the instrument's subject: straight to the depth stage, which throttles it.
                if (!BookCodec.TryRead(msg.Data.Span, id, _time.GetTimestamp(), out var book, out _))
                {
                    Interlocked.Increment(ref _feedMetrics.MalformedFrames);
                    continue;
                }

                Interlocked.Increment(ref _metrics.Received);
                _depth?.Write(book!);
                continue;
            }

            if (!TickCodec.TryRead(msg.Data.Span, out var wire))
            {
                Interlocked.Increment(ref _feedMetrics.MalformedFrames);
                continue;
            }

            Interlocked.Increment(ref _metrics.Received);
            _metrics.HopLatency.Record((NatsPublisher.UnixMicroseconds(_time) - wire.PublishedUs) / 1e6);
            await ApplyAsync(id, wire, fromBucket: false, ticks, ct).ConfigureAwait(false);
        }
    }

    private async Task WatchBucketAsync(ChannelWriter<Tick> ticks, CancellationToken ct)
    {
        var filters = _options.SubjectFilters.Select(NatsSubjects.KvFilter).ToArray();
        var delay = RetryMin;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await _link.ConnectAsync().WaitAsync(ct).ConfigureAwait(false);
                var bucket = await _link.GetBucketAsync(ct).ConfigureAwait(false);
                var opts = new NatsKVWatchOpts { IgnoreDeletes = true };
                await foreach (var entry in bucket.WatchAsync<ReadOnlyMemory<byte>>(filters, opts: opts, cancellationToken: ct).ConfigureAwait(false))
                {
                    delay = RetryMin;
                    if (!_byKvKey.TryGetValue(entry.Key, out var id))
                    {
                        Interlocked.Increment(ref _feedMetrics.UnknownInstruments);
                        continue;
                    }

                    if (!TickCodec.TryRead(entry.Value.Span, out var wire))
                    {
                        Interlocked.Increment(ref _feedMetrics.MalformedFrames);
                        continue;
                    }

                    await ApplyAsync(id, wire, fromBucket: true, ticks, ct).ConfigureAwait(false);
                }
            }
            catch (NATS.Client.Core.NatsException ex)
            {
                LogWatchFailed(_options.Bucket, ex.Message, delay.TotalSeconds);
                await Task.Delay(delay, _time, ct).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(RetryMax.TotalMilliseconds, delay.TotalMilliseconds * 2 * (0.8 + (Random.Shared.NextDouble() * 0.4))));
            }
        }
    }

    private async ValueTask ApplyAsync(int id, WireTick wire, bool fromBucket, ChannelWriter<Tick> ticks, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (fromBucket)
            {
                // The bucket lags the live subject by up to a flush interval: only a strictly newer value is news.
                if (wire.ExchangeTimeUs <= _lastTimeUs[id])
                {
                    return;
                }

                Interlocked.Increment(ref _metrics.KvApplied);
            }

            _lastTimeUs[id] = wire.ExchangeTimeUs;
            var tick = new Tick(id, wire.LastPrice, wire.Volume, wire.ExchangeTimeUs, _time.GetTimestamp(), wire.Source, wire.PreviousClose);
            if (!ticks.TryWrite(tick))
            {
                await ticks.WriteAsync(tick, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    [LoggerMessage(EventId = 920, Level = LogLevel.Information, Message = "NATS feed: {Url}, subjects {Subjects}")]
    private partial void LogStarting(string url, string subjects);

    [LoggerMessage(EventId = 921, Level = LogLevel.Warning, Message = "NATS key-value watch of {Bucket} failed ({Error}); retrying in {Seconds:0.0} s")]
    private partial void LogWatchFailed(string bucket, string error, double seconds);
}
