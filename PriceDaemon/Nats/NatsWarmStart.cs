using Microsoft.Extensions.Options;
using NATS.Client.KeyValueStore;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Storage;

namespace PriceDaemon.Nats;

/// <summary>
/// An edge's warm start from the key-value bucket, before it reports ready. It runs first among the hosted services
/// (the host starts Kestrel and says READY only after all of them have started): it loads storage (idempotent), then
/// takes each bucket value that is newer, by exchange timestamp, than what storage had. Such a value enters the cache
/// as storage's do: source <c>stored</c>, <c>stale: true</c> until a live tick replaces it, seq one past the stored
/// one. NATS that does not answer within <see cref="NatsOptions.WarmTimeoutMs"/> does not hold the daemon: it starts
/// with storage's prices, and the feed's own bucket watch fills in later.
/// </summary>
internal sealed partial class NatsWarmStart : IHostedService
{
    private readonly NatsLink _link;
    private readonly NatsOptions _options;
    private readonly StorageService _storage;
    private readonly PriceCache _cache;
    private readonly InstrumentRegistry _instruments;
    private readonly NatsMetrics _metrics;
    private readonly FrameEncoder _encoder;
    private readonly ILogger<NatsWarmStart> _logger;

    public NatsWarmStart(
        NatsLink link,
        IOptions<NatsOptions> options,
        IOptions<FeedOptions> feed,
        StorageService storage,
        PriceCache cache,
        InstrumentRegistry instruments,
        NatsMetrics metrics,
        ILogger<NatsWarmStart> logger)
    {
        _link = link;
        _options = options.Value;
        _storage = storage;
        _cache = cache;
        _instruments = instruments;
        _metrics = metrics;
        _encoder = new FrameEncoder(feed.Value.MicrosecondTimestamps);
        _logger = logger;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _storage.Open();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.WarmTimeoutMs);
        var newer = new Dictionary<int, WireTick>();
        try
        {
            await _link.ConnectAsync().WaitAsync(timeout.Token).ConfigureAwait(false);
            var bucket = await _link.GetBucketAsync(timeout.Token).ConfigureAwait(false);
            await ReadAsync(bucket, newer, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or NATS.Client.Core.NatsException && !cancellationToken.IsCancellationRequested)
        {
            LogWarmIncomplete(_options.Bucket, _options.WarmTimeoutMs, newer.Count, ex.Message);
        }

        Apply(newer);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task ReadAsync(INatsKVStore bucket, Dictionary<int, WireTick> newer, CancellationToken ct)
    {
        var filters = _options.SubjectFilters.Select(NatsSubjects.KvFilter).ToArray();
        var byKey = _instruments.All.ToDictionary(i => NatsSubjects.KvKey(i.Key), i => i.Id, StringComparer.Ordinal);
        var opts = new NatsKVWatchOpts
        {
            IgnoreDeletes = true,
            // An empty bucket (or subset) has nothing to deliver: end the enumeration instead of waiting for updates.
            OnNoData = static _ => ValueTask.FromResult(true),
        };
        await foreach (var entry in bucket.WatchAsync<ReadOnlyMemory<byte>>(filters, opts: opts, cancellationToken: ct).ConfigureAwait(false))
        {
            if (byKey.TryGetValue(entry.Key, out var id)
                && TickCodec.TryRead(entry.Value.Span, out var wire)
                && wire.ExchangeTimeUs > (_cache.TryGetValues(id, out var cached) ? cached.TimestampUs : long.MinValue))
            {
                newer[id] = wire;
            }

            if (entry.Delta == 0)
            {
                break; // the newest value there was when the watch started: the initial values are all in
            }
        }
    }

    private void Apply(Dictionary<int, WireTick> newer)
    {
        var frames = new List<PriceFrame>(newer.Count);
        foreach (var (id, wire) in newer)
        {
            var known = _cache.TryGetValues(id, out var existing);
            var previousClose = wire.PreviousClose > 0 ? wire.PreviousClose : known ? existing.PreviousClose : _instruments[id].ReferencePrice;
            var tick = new Tick(id, wire.LastPrice, wire.Volume, wire.ExchangeTimeUs, 0, PriceSource.Stored);
            frames.Add(_encoder.Encode(_instruments[id], tick, existing.Seq + 1, previousClose, stale: true));
        }

        _cache.Restore(_cache.Epoch, frames);
        foreach (var frame in frames)
        {
            _cache.MarkDirty(frame.InstrumentId); // so the edge's own storage has them at its next flush
        }

        Interlocked.Add(ref _metrics.KvApplied, frames.Count);
        LogWarmed(frames.Count, _options.Bucket);
    }

    [LoggerMessage(EventId = 930, Level = LogLevel.Information, Message = "NATS warm start: {Count} prices from bucket {Bucket} were newer than storage's")]
    private partial void LogWarmed(int count, string bucket);

    [LoggerMessage(EventId = 931, Level = LogLevel.Warning, Message = "NATS warm start from bucket {Bucket} incomplete after {TimeoutMs} ms ({Count} newer prices taken): {Error}; serving storage's prices, the feed catches up")]
    private partial void LogWarmIncomplete(string bucket, int timeoutMs, int count, string error);
}
