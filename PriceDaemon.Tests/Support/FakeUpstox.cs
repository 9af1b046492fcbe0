using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PriceDaemon.Feeds.Upstox.Proto;
using FeedType = PriceDaemon.Feeds.Upstox.Proto.Type;

namespace PriceDaemon.Tests.Support;

/// <summary>One request the daemon sent on the feed socket: <c>{"guid", "method", "data": {"mode", "instrumentKeys"}}</c>.</summary>
internal sealed record FakeUpstoxRequest(int Connection, string Method, string? Mode, IReadOnlyList<string> Keys);

/// <summary>
/// A loopback Upstox Market Data Feed V3: <c>GET /v3/feed/market-data-feed/authorize</c> checks the bearer token
/// (401 otherwise) and hands out a single-use <c>ws</c> URL on this server; the WebSocket refuses a used or
/// unknown code (403), sends <c>market_info</c> at connect, reads binary JSON sub/unsub/change_mode requests
/// (text frames are ignored, as Upstox does), answers a sub with an <c>initial_feed</c> frame (type left absent
/// on the wire), and lets the test push <c>live_feed</c> frames, fragment them, send garbage or drop the socket.
/// Frames are built with the daemon's own generated protobuf types.
/// </summary>
internal sealed class FakeUpstox : IAsyncDisposable
{
    public const string GoodToken = "fake-upstox-token-7f3a9c";
    private const string FeedPath = "/market-data-feeder/v3/upstox-developer-api/feeds";

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, bool> _codes = new();
    private readonly List<FakeUpstoxRequest> _requests = [];
    private readonly HashSet<string> _subscribed = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _modes = new(StringComparer.Ordinal);
    private readonly List<Uri> _issued = [];
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private WebSocket? _socket;
    private int _connections;
    private int _textFrames;

    private FakeUpstox(WebApplication app)
    {
        _app = app;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseUri = new Uri(address);
    }

    public Uri BaseUri { get; }

    /// <summary>The bearer token authorize accepts.</summary>
    public string ValidToken { get; set; } = GoodToken;

    /// <summary>Sent in the market_info frame at connect.</summary>
    public MarketStatus SegmentStatus { get; set; } = MarketStatus.NormalOpen;

    /// <summary>Prices the initial_feed answers a sub with; keys without one get no entry.</summary>
    public ConcurrentDictionary<string, double> InitialPrices { get; } = new(StringComparer.Ordinal);

    public int Connections => Volatile.Read(ref _connections);

    public int TextFrames => Volatile.Read(ref _textFrames);

    public int AuthorizeCalls;

    public int RefusedAuthorizations;

    public IReadOnlyList<Uri> IssuedUrls
    {
        get
        {
            lock (_issued)
            {
                return [.. _issued];
            }
        }
    }

    public IReadOnlyList<FakeUpstoxRequest> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>What the daemon is subscribed to now, by its sub and unsub requests on the current connection.</summary>
    public IReadOnlySet<string> Subscribed
    {
        get
        {
            lock (_requests)
            {
                return new HashSet<string>(_subscribed, StringComparer.Ordinal);
            }
        }
    }

    /// <summary>The mode each subscribed key is in now, by sub (its mode) and change_mode requests on the current connection.</summary>
    public IReadOnlyDictionary<string, string> Modes
    {
        get
        {
            lock (_requests)
            {
                return new Dictionary<string, string>(_modes, StringComparer.Ordinal);
            }
        }
    }

    /// <summary>
    /// A live_feed frame in full mode for one key: its LTPC and <paramref name="levels"/> quotes of depth (5 in
    /// <c>full</c>, 30 in <c>full_d30</c>), bids from <paramref name="bestBid"/> down and asks a tick above it up, as
    /// Upstox pairs them: quote i holds the i-th bid and the i-th ask.
    /// </summary>
    public static FeedResponse FullFeedWithDepth(string key, double ltp, double bestBid, int levels, long currentTs)
    {
        var market = new MarketFullFeed { Ltpc = new LTPC { Ltp = ltp, Ltt = currentTs, Ltq = 5, Cp = ltp }, Vtt = 123_456, MarketLevel = new MarketLevel() };
        for (var i = 0; i < levels; i++)
        {
            market.MarketLevel.BidAskQuote.Add(new Quote
            {
                BidP = Math.Round(bestBid - (i * 0.05), 2),
                BidQ = 10 + i,
                AskP = Math.Round(bestBid + 0.05 + (i * 0.05), 2),
                AskQ = 20 + i,
            });
        }

        var response = new FeedResponse { Type = FeedType.LiveFeed, CurrentTs = currentTs };
        response.Feeds[key] = new Feed { FullFeed = new FullFeed { MarketFF = market }, RequestMode = levels > 5 ? RequestMode.FullD30 : RequestMode.FullD5 };
        return response;
    }

    /// <summary>
    /// A daemon's settings for this fake: the Upstox feed with the token in <paramref name="tokenFile"/>, fast
    /// reconnects and debounce, no linger and no stall watchdog, so that tests see upstream changes at once.
    /// </summary>
    public Dictionary<string, string> DaemonSettings(string tokenFile, Dictionary<string, string>? extra = null)
    {
        var settings = new Dictionary<string, string>
        {
            ["Feed:Source"] = "Upstox",
            ["Feed:Upstox:BaseUrl"] = BaseUri.ToString(),
            ["Feed:Upstox:TokenFile"] = tokenFile,
            ["Feed:Upstox:TokenRecheckMs"] = "20",
            ["Feed:Upstox:ReconnectMinMs"] = "10",
            ["Feed:Upstox:ReconnectMaxMs"] = "200",
            ["Feed:Upstox:DebounceMs"] = "20",
            ["Feed:Upstox:UnsubscribeDelaySeconds"] = "0",
            ["Feed:StallSeconds"] = "0",
        };
        foreach (var (key, value) in extra ?? [])
        {
            settings[key] = value;
        }

        return settings;
    }

    public static async Task<FakeUpstox> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        FakeUpstox? fake = null;
        app.UseWebSockets();
        app.MapGet("/v3/feed/market-data-feed/authorize", (HttpContext context) => fake!.Authorize(context));
        app.Map(FeedPath, (HttpContext context) => fake!.AcceptAsync(context));
        await app.StartAsync();
        fake = new FakeUpstox(app);
        return fake;
    }

    /// <summary>A live_feed frame with one LTPC per entry.</summary>
    public static FeedResponse LiveFeed(params (string Key, double Ltp, long LttMs, double Cp)[] prices)
    {
        var response = new FeedResponse { Type = FeedType.LiveFeed, CurrentTs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() };
        foreach (var (key, ltp, ltt, cp) in prices)
        {
            response.Feeds[key] = new Feed { Ltpc = new LTPC { Ltp = ltp, Ltt = ltt, Ltq = 10, Cp = cp } };
        }

        return response;
    }

    public Task SendAsync(FeedResponse response, int fragmentBytes = 0) => SendRawAsync(response.ToByteArray(), fragmentBytes);

    /// <summary>Sends bytes as one binary message, in fragments of <paramref name="fragmentBytes"/> when given.</summary>
    public async Task SendRawAsync(byte[] bytes, int fragmentBytes = 0)
    {
        var socket = _socket ?? throw new InvalidOperationException("no feed connection");
        await _sendLock.WaitAsync();
        try
        {
            var size = fragmentBytes > 0 ? fragmentBytes : bytes.Length;
            for (var offset = 0; offset < bytes.Length || offset == 0; offset += size)
            {
                var count = Math.Min(size, bytes.Length - offset);
                var last = offset + count >= bytes.Length;
                await socket.SendAsync(bytes.AsMemory(offset, count), WebSocketMessageType.Binary, last, CancellationToken.None);
                if (last)
                {
                    break;
                }
            }
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Cuts the current feed connection without a close handshake, as a network fault would.</summary>
    public void Drop() => _socket?.Abort();

    public async ValueTask DisposeAsync()
    {
        _socket?.Abort();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _sendLock.Dispose();
    }

    private IResult Authorize(HttpContext context)
    {
        Interlocked.Increment(ref AuthorizeCalls);
        if (context.Request.Headers.Authorization.ToString() != $"Bearer {ValidToken}")
        {
            Interlocked.Increment(ref RefusedAuthorizations);
            return Results.Json(new { status = "error", errors = new[] { new { errorCode = "UDAPI100050", message = "Invalid token used to access API" } } }, statusCode: 401);
        }

        var code = Guid.NewGuid().ToString();
        _codes[code] = true;
        var url = new Uri($"ws://{BaseUri.Authority}{FeedPath}?requestId={Guid.NewGuid()}&code={code}");
        lock (_issued)
        {
            _issued.Add(url);
        }

        return Results.Json(new { status = "success", data = new { authorized_redirect_uri = url.ToString(), authorizedRedirectUri = url.ToString() } });
    }

    private async Task AcceptAsync(HttpContext context)
    {
        // Single use: the code is gone once a connection presented it.
        if (!context.WebSockets.IsWebSocketRequest || !_codes.TryRemove(context.Request.Query["code"].ToString(), out _))
        {
            context.Response.StatusCode = 403;
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var connection = Interlocked.Increment(ref _connections);
        lock (_requests)
        {
            _subscribed.Clear();
            _modes.Clear();
        }

        _socket = socket;
        var info = new FeedResponse { Type = FeedType.MarketInfo, CurrentTs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), MarketInfo = new MarketInfo() };
        info.MarketInfo.SegmentStatus["NSE_EQ"] = SegmentStatus;
        info.MarketInfo.SegmentStatus["MCX_FO"] = MarketStatus.NormalClose;
        await SendAsync(info);

        var buffer = new byte[64 * 1024];
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                var count = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await socket.ReceiveAsync(buffer.AsMemory(count), CancellationToken.None);
                    count += result.Count;
                }
                while (!result.EndOfMessage);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }

                if (result.MessageType == WebSocketMessageType.Text)
                {
                    Interlocked.Increment(ref _textFrames);
                    continue;
                }

                var request = Parse(connection, buffer.AsSpan(0, count));
                lock (_requests)
                {
                    _requests.Add(request);
                    if (request.Method == "sub")
                    {
                        _subscribed.UnionWith(request.Keys);
                    }
                    else if (request.Method == "unsub")
                    {
                        _subscribed.ExceptWith(request.Keys);
                    }

                    foreach (var key in request.Keys)
                    {
                        if (request.Method is "sub" or "change_mode" && request.Mode is { } mode)
                        {
                            _modes[key] = mode;
                        }
                        else if (request.Method == "unsub")
                        {
                            _modes.Remove(key);
                        }
                    }
                }

                if (request.Method == "sub")
                {
                    // initial_feed is the zero value: Upstox leaves `type` off the wire, and so does this.
                    var initial = new FeedResponse { CurrentTs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() };
                    foreach (var key in request.Keys)
                    {
                        if (InitialPrices.TryGetValue(key, out var price))
                        {
                            initial.Feeds[key] = new Feed { Ltpc = new LTPC { Ltp = price, Ltt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), Ltq = 1, Cp = price } };
                        }
                    }

                    await SendAsync(initial);
                }
            }
        }
        catch (WebSocketException)
        {
            // Dropped by the test or by the daemon.
        }
        finally
        {
            Interlocked.CompareExchange(ref _socket, null, socket);
        }
    }

    private static FakeUpstoxRequest Parse(int connection, ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;
        _ = root.GetProperty("guid").GetString();
        var data = root.GetProperty("data");
        var mode = data.TryGetProperty("mode", out var m) ? m.GetString() : null;
        var keys = data.GetProperty("instrumentKeys").EnumerateArray().Select(k => k.GetString()!).ToList();
        return new FakeUpstoxRequest(connection, root.GetProperty("method").GetString()!, mode, keys);
    }
}
