using Microsoft.Extensions.Options;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;
using NATS.Net;

namespace PriceDaemon.Nats;

/// <summary>
/// The daemon's one NATS connection, shared by the publisher, the edge feed and the warm start. NATS.Net reconnects
/// on its own (for ever, with back-off and jitter) and resubscribes; this class only starts it and counts and logs
/// its state changes.
/// </summary>
internal sealed partial class NatsLink : IAsyncDisposable
{
    private readonly NatsOptions _options;
    private readonly NatsMetrics _metrics;
    private readonly ILogger<NatsLink> _logger;
    private readonly Lazy<Task> _connect;
    private INatsKVStore? _bucket;

    public NatsLink(IOptions<NatsOptions> options, NatsMetrics metrics, ILoggerFactory loggerFactory)
    {
        _options = options.Value;
        _metrics = metrics;
        _logger = loggerFactory.CreateLogger<NatsLink>();
        Connection = new NatsConnection(new NatsOpts
        {
            Url = _options.Url,
            Name = _options.Name.Length > 0 ? _options.Name : $"pricedaemon@{Environment.MachineName}",
            LoggerFactory = loggerFactory,
            ConnectTimeout = TimeSpan.FromMilliseconds(_options.ConnectTimeoutMs),
            ReconnectWaitMin = TimeSpan.FromMilliseconds(_options.ReconnectMinMs),
            ReconnectWaitMax = TimeSpan.FromMilliseconds(_options.ReconnectMaxMs),
            MaxReconnectRetry = -1,
            // A daemon started before NATS keeps trying instead of failing: its clients get stored prices meanwhile.
            RetryOnInitialConnect = true,
            SubPendingChannelCapacity = _options.SubscriptionCapacity,
        });
        Connection.ConnectionOpened += OnOpenedAsync;
        Connection.ConnectionDisconnected += OnDisconnectedAsync;
        Connection.MessageDropped += OnDroppedAsync;
        _connect = new Lazy<Task>(() => Connection.ConnectAsync().AsTask());
    }

    public NatsConnection Connection { get; }

    public bool IsOpen => Connection.ConnectionState == NatsConnectionState.Open;

    /// <summary>Raised on every open (true) and loss (false) of the connection.</summary>
    public event Action<bool>? StateChanged;

    /// <summary>Starts connecting once; the task completes when the first connection is open.</summary>
    public Task ConnectAsync() => _connect.Value;

    /// <summary>The last-values bucket, created (one value per key, file storage) if no publisher made it yet.</summary>
    public async ValueTask<INatsKVStore> GetBucketAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _bucket) is { } bucket)
        {
            return bucket;
        }

        bucket = await GetOrCreateBucketAsync(new NatsKVConfig(_options.Bucket)
        {
            History = 1,
            Storage = NatsKVStorageType.File,
            Description = "PriceDaemon last known prices (TickCodec layout)",
        }, ct).ConfigureAwait(false);
        Volatile.Write(ref _bucket, bucket);
        return bucket;
    }

    /// <summary>A bucket as whichever daemon came first made it, or made now with <paramref name="create"/>.</summary>
    public async ValueTask<INatsKVStore> GetOrCreateBucketAsync(NatsKVConfig create, CancellationToken ct)
    {
        var kv = Connection.CreateKeyValueStoreContext();
        try
        {
            return await kv.GetStoreAsync(create.Bucket, ct).ConfigureAwait(false);
        }
        catch (NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            var bucket = await kv.CreateStoreAsync(create, ct).ConfigureAwait(false);
            LogBucketCreated(create.Bucket);
            return bucket;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Connection.ConnectionOpened -= OnOpenedAsync;
        Connection.ConnectionDisconnected -= OnDisconnectedAsync;
        Connection.MessageDropped -= OnDroppedAsync;
        await Connection.DisposeAsync().ConfigureAwait(false);
    }

    private ValueTask OnOpenedAsync(object? sender, NatsEventArgs args)
    {
        Interlocked.Increment(ref _metrics.Connects);
        LogOpened(_options.Url);
        StateChanged?.Invoke(true);
        return ValueTask.CompletedTask;
    }

    private ValueTask OnDisconnectedAsync(object? sender, NatsEventArgs args)
    {
        Interlocked.Increment(ref _metrics.Disconnects);
        LogLost(_options.Url, args.Message);
        StateChanged?.Invoke(false);
        return ValueTask.CompletedTask;
    }

    private ValueTask OnDroppedAsync(object? sender, NatsMessageDroppedEventArgs args)
    {
        Interlocked.Increment(ref _metrics.ReceiveDropped);
        return ValueTask.CompletedTask;
    }

    [LoggerMessage(EventId = 900, Level = LogLevel.Information, Message = "NATS connected to {Url}")]
    private partial void LogOpened(string url);

    [LoggerMessage(EventId = 901, Level = LogLevel.Warning, Message = "NATS connection to {Url} lost ({Reason}); reconnecting")]
    private partial void LogLost(string url, string reason);

    [LoggerMessage(EventId = 902, Level = LogLevel.Information, Message = "NATS key-value bucket {Bucket} created")]
    private partial void LogBucketCreated(string bucket);
}
