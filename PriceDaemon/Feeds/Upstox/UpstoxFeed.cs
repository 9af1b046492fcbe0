using System.Threading.Channels;
using Microsoft.Extensions.Options;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Feeds.Upstox;

/// <summary>
/// Upstox Market Data Feed V3. One connection at a time (Upstox allows one per app and user): authorize for a
/// single-use <c>wss</c> URL, connect, subscribe to what clients want (<see cref="UpstoxSubscriptions"/>), decode
/// protobuf frames into ticks. Whatever ends a connection, the next attempt authorizes again, after an
/// exponential backoff with full jitter. A refused token waits for a new one instead of hammering Upstox.
/// </summary>
internal sealed partial class UpstoxFeed : IFeedSource, IDisposable
{
    public const string AuthFailedMessage = "market data authentication failed";
    public const string NoTokenMessage = AuthFailedMessage + ": no access token configured";

    private readonly InstrumentRegistry _instruments;
    private readonly UpstoxFeedOptions _options;
    private readonly int _stallSeconds;
    private readonly FeedStatus _status;
    private readonly PriceCache _cache;
    private readonly UpstoxSubscriptions _subscriptions;
    private readonly FeedMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger<UpstoxFeed> _logger;
    private readonly HttpClient _http;
    private readonly UpstoxAuthorizer _authorizer;
    private readonly UpstoxTokenSource _tokens;
    private readonly HashSet<string> _segments;
    private readonly DepthIngest? _depth;

    public UpstoxFeed(
        InstrumentRegistry instruments,
        IOptions<FeedOptions> options,
        FeedStatus status,
        PriceCache cache,
        UpstoxSubscriptions subscriptions,
        FeedMetrics metrics,
        TimeProvider time,
        ILogger<UpstoxFeed> logger,
        DepthIngest? depth = null)
    {
        _depth = depth;
        _instruments = instruments;
        _options = options.Value.Upstox;
        _stallSeconds = options.Value.StallSeconds;
        _status = status;
        _cache = cache;
        _subscriptions = subscriptions;
        _metrics = metrics;
        _time = time;
        _logger = logger;
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
        {
            Timeout = TimeSpan.FromSeconds(_options.ConnectTimeoutSeconds),
        };
        _authorizer = new UpstoxAuthorizer(_http, _options.BaseUrl);
        _tokens = new UpstoxTokenSource(_options);
        // The market segments of our universe ("NSE_EQ" of "NSE_EQ|INE002A01018"): market_info about others is noise.
        _segments = new HashSet<string>(instruments.All.Select(static i => i.Key.Split('|')[0]), StringComparer.Ordinal);
    }

    public async Task RunAsync(ChannelWriter<Tick> ticks, CancellationToken stoppingToken)
    {
        // ltpc mode carries no day volume: ticks keep the last known one, starting from the restored cache.
        var volumes = new long[_instruments.Count];
        for (var id = 0; id < volumes.Length; id++)
        {
            volumes[id] = _cache.TryGetValues(id, out var cached) ? cached.Volume : 0;
        }

        var decoder = new UpstoxDecoder(_instruments, _metrics, volumes, _time, _logger, _depth);
        LogStarting(_options.Mode, new Uri(_options.BaseUrl).Host, _tokens.Origin, _options.EffectiveMaxInstruments);
        var attempt = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            var token = _tokens.Current();
            if (token is null)
            {
                LogNoToken(_tokens.Origin);
                _status.Report(FeedState.Error, NoTokenMessage);
                await WaitForNewTokenAsync(null, stoppingToken).ConfigureAwait(false);
                continue;
            }

            ConnectionEnd end;
            try
            {
                var wss = await _authorizer.AuthorizeAsync(token, stoppingToken).ConfigureAwait(false);
                end = await RunConnectionAsync(wss, token, decoder, ticks, stoppingToken).ConfigureAwait(false);
            }
            catch (UpstoxAuthenticationException ex)
            {
                Interlocked.Increment(ref _metrics.AuthFailures);
                LogAuthFailed(ex.Message, _tokens.Origin);
                _status.Report(FeedState.Error, AuthFailedMessage);
                await WaitForNewTokenAsync(token, stoppingToken).ConfigureAwait(false);
                attempt = 0;
                continue;
            }
            catch (Exception ex) when (IsConnectionFault(ex) && !stoppingToken.IsCancellationRequested)
            {
                LogConnectFailed(ex.GetType().Name, ex.Message);
                end = new ConnectionEnd(false, null);
            }

            if (stoppingToken.IsCancellationRequested)
            {
                break;
            }

            Interlocked.Increment(ref _metrics.Disconnects);
            _status.Report(FeedState.Disconnected, end.Message ?? FeedStatus.DisconnectedMessage);
            attempt = end.Delivered ? 1 : attempt + 1;
            var delay = Backoff(attempt, _options.ReconnectMinMs, _options.ReconnectMaxMs, Random.Shared);
            LogReconnecting((long)delay.TotalMilliseconds);
            await Task.Delay(delay, _time, stoppingToken).ConfigureAwait(false);
        }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>
    /// Exponential backoff with full jitter: attempt n waits a uniform draw from [min, min(max, min × 2^n)], so a
    /// fleet of daemons cut off together does not come back in step.
    /// </summary>
    internal static TimeSpan Backoff(int attempt, int minMs, int maxMs, Random random)
    {
        var ceiling = Math.Min(maxMs, minMs * Math.Pow(2, Math.Clamp(attempt, 0, 30)));
        var floor = Math.Min(minMs, ceiling);
        return TimeSpan.FromMilliseconds(floor + (random.NextDouble() * (ceiling - floor)));
    }

    private static bool IsConnectionFault(Exception ex) =>
        ex is HttpRequestException or System.Net.WebSockets.WebSocketException or IOException or InvalidDataException
            or OperationCanceledException or TimeoutException;

    /// <summary>
    /// After a refused token: waits until the token changes (checked every <see cref="UpstoxFeedOptions.TokenRecheckMs"/>),
    /// or at most the longest backoff, then lets the loop try again (access may have been granted meanwhile).
    /// </summary>
    private async Task WaitForNewTokenAsync(string? refused, CancellationToken ct)
    {
        var started = _time.GetTimestamp();
        var recheck = TimeSpan.FromMilliseconds(_options.TokenRecheckMs);
        var longest = TimeSpan.FromMilliseconds(_options.ReconnectMaxMs);
        while (_time.GetElapsedTime(started) < longest)
        {
            await Task.Delay(recheck, _time, ct).ConfigureAwait(false);
            if (!string.Equals(_tokens.Current(), refused, StringComparison.Ordinal))
            {
                LogTokenChanged(_tokens.Origin);
                return;
            }
        }
    }

    /// <summary>How a connection ended: whether it delivered anything (resets the backoff), and the status message to show.</summary>
    private readonly record struct ConnectionEnd(bool Delivered, string? Message);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "Upstox feed starting: mode {Mode}, {Host}, token from {TokenOrigin}, at most {Cap} instruments upstream")]
    private partial void LogStarting(string mode, string host, string tokenOrigin, int cap);

    [LoggerMessage(EventId = 111, Level = LogLevel.Error, Message = "Upstox: no access token in {TokenOrigin}; waiting for one")]
    private partial void LogNoToken(string tokenOrigin);

    [LoggerMessage(EventId = 112, Level = LogLevel.Error, Message = "Upstox market data authentication failed: {Reason}; waiting for a new token in {TokenOrigin}")]
    private partial void LogAuthFailed(string reason, string tokenOrigin);

    [LoggerMessage(EventId = 113, Level = LogLevel.Warning, Message = "Upstox connection failed: {Kind}: {Reason}")]
    private partial void LogConnectFailed(string kind, string reason);

    [LoggerMessage(EventId = 114, Level = LogLevel.Information, Message = "Upstox: reconnecting in {DelayMs} ms")]
    private partial void LogReconnecting(long delayMs);

    [LoggerMessage(EventId = 115, Level = LogLevel.Information, Message = "Upstox: the access token in {TokenOrigin} changed; authorizing again")]
    private partial void LogTokenChanged(string tokenOrigin);
}
