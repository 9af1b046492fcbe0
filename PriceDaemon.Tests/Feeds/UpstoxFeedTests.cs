using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using PriceDaemon.Feeds;
using PriceDaemon.Feeds.Upstox.Proto;
using PriceDaemon.Tests.Support;
using Serilog.Core;
using Serilog.Events;

namespace PriceDaemon.Tests.Feeds;

/// <summary>The Upstox feed end to end: a loopback fake of Upstox, the real daemon, a real WebSocket client.</summary>
[TestFixture]
public sealed class UpstoxFeedTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";
    private const string Infosys = "NSE_EQ|INE009A01021";
    private const string Tcs = "NSE_EQ|INE467B01029";

    private FakeUpstox _fake = null!;
    private string _folder = null!;
    private string _tokenFile = null!;

    [SetUp]
    public async Task SetUp()
    {
        _fake = await FakeUpstox.StartAsync();
        _folder = Directory.CreateTempSubdirectory("pricedaemon-upstox-").FullName;
        _tokenFile = Path.Combine(_folder, "upstox.token");
        await File.WriteAllTextAsync(_tokenFile, FakeUpstox.GoodToken + "\n");
    }

    [TearDown]
    public async Task TearDown()
    {
        await _fake.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public async Task UpstoxFeed_DeliversInitialAndLiveTicksToClients_WhenAClientSubscribes()
    {
        await using var daemon = await StartDaemonAsync();
        _fake.InitialPrices[Reliance] = 2490;
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SubscribeAsync(Reliance);

        await Eventually.TrueAsync(() => _fake.Subscribed.Contains(Reliance), "the upstream sub");
        var sub = _fake.Requests.Single(r => r.Method == "sub");
        Assert.That(sub.Mode, Is.EqualTo("ltpc"));
        Assert.That(sub.Keys, Is.EqualTo(new[] { Reliance }));
        Assert.That(_fake.TextFrames, Is.Zero, "Upstox reads requests only from binary frames");
        await client.NextPriceAsync(Reliance, 2490);

        var ltt = DateTimeOffset.Parse("2026-01-19T04:00:00.250Z").ToUnixTimeMilliseconds();
        await _fake.SendAsync(FakeUpstox.LiveFeed((Reliance, 2500.5, ltt, 2450)));
        var data = (await client.NextPriceAsync(Reliance, 2500.5)).GetProperty("data");

        Assert.That(data.GetProperty("timestamp").GetString(), Is.EqualTo("2026-01-19T04:00:00.250Z"));
        Assert.That(data.GetProperty("change_percent").GetDouble(), Is.EqualTo(2.06), "cp is the previous close");
        Assert.That(data.GetProperty("source").GetString(), Is.EqualTo("live"));
    }

    [Test]
    public async Task UpstoxFeed_ReportsMarketSegmentStatus_FromMarketInfo()
    {
        _fake.SegmentStatus = MarketStatus.NormalClose;
        await using var daemon = await StartDaemonAsync();
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);

        var status = await client.NextAsync("status", f => f.GetProperty("message").GetString()!.Contains("NSE_EQ"));

        Assert.That(status.GetProperty("status").GetString(), Is.EqualTo("connected"));
        Assert.That(status.GetProperty("message").GetString(), Does.Contain("NSE_EQ closed").And.Not.Contain("MCX_FO"));
    }

    [Test]
    public async Task UpstoxFeed_ReassemblesFrames_FragmentedBeyond8KiB()
    {
        await using var daemon = await StartDaemonAsync();
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SubscribeAsync(Reliance);
        await Eventually.TrueAsync(() => _fake.Subscribed.Contains(Reliance), "the upstream sub");

        var big = FakeUpstox.LiveFeed((Reliance, 2511.25, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 2450));
        for (var i = 0; i < 600; i++)
        {
            big.Feeds[$"NSE_EQ|NOTOURS{i:D5}"] = new Feed { Ltpc = new LTPC { Ltp = 10 + i, Ltt = 1, Cp = 10 } };
        }

        Assert.That(big.CalculateSize(), Is.GreaterThan(3 * 8192));
        await _fake.SendAsync(big, fragmentBytes: 4096);

        await client.NextPriceAsync(Reliance, 2511.25);
        var metrics = daemon.Services.GetRequiredService<FeedMetrics>();
        Assert.That(Volatile.Read(ref metrics.UnknownInstruments), Is.EqualTo(600), "keys outside the universe are counted, not fanned out");
    }

    [Test]
    public async Task UpstoxFeed_SkipsMalformedFrame_AndKeepsTheConnection()
    {
        await using var daemon = await StartDaemonAsync();
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SubscribeAsync(Reliance);
        await Eventually.TrueAsync(() => _fake.Subscribed.Contains(Reliance), "the upstream sub");

        await _fake.SendRawAsync([0x12, 0x40, 0x0A, 0x01]); // feeds entry claims 64 bytes, has 2: truncated
        await _fake.SendAsync(FakeUpstox.LiveFeed((Reliance, 2520, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 2450)));

        await client.NextPriceAsync(Reliance, 2520);
        Assert.That(Volatile.Read(ref daemon.Services.GetRequiredService<FeedMetrics>().MalformedFrames), Is.EqualTo(1));
        Assert.That(_fake.Connections, Is.EqualTo(1));
    }

    [Test]
    public async Task UpstoxFeed_AuthorizesAgainAndResubscribes_AfterTheConnectionDrops()
    {
        await using var daemon = await StartDaemonAsync();
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SubscribeAsync(Reliance);
        await Eventually.TrueAsync(() => _fake.Subscribed.Contains(Reliance), "the upstream sub");
        await client.NextAsync("status", f => f.GetProperty("status").GetString() == "connected");

        _fake.Drop();

        var down = await client.NextAsync("status", f => f.GetProperty("status").GetString() != "connected");
        Assert.That(down.GetProperty("status").GetString(), Is.EqualTo("disconnected"));
        await Eventually.TrueAsync(() => _fake.Connections == 2 && _fake.Subscribed.Contains(Reliance), "a second connection with the subscription");
        await client.NextAsync("status", f => f.GetProperty("status").GetString() == "connected");
        Assert.That(_fake.AuthorizeCalls, Is.EqualTo(2), "the wss URL is single-use: one authorize per connection");
        Assert.That(_fake.IssuedUrls.Distinct().Count(), Is.EqualTo(2));
        Assert.That(_fake.Requests.Where(r => r.Connection == 2 && r.Method == "sub").SelectMany(r => r.Keys), Is.EquivalentTo(new[] { Reliance }));

        await _fake.SendAsync(FakeUpstox.LiveFeed((Reliance, 2530, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 2450)));
        await client.NextPriceAsync(Reliance, 2530);
    }

    [Test]
    public async Task UpstoxFeed_ReportsAuthenticationFailure_AndRecoversWhenTheTokenFileChanges()
    {
        const string badToken = "expired-token-31b5e0";
        await File.WriteAllTextAsync(_tokenFile, badToken + "\n");
        var logs = new CapturingSink();
        await using var daemon = await StartDaemonAsync(configure: s => s.AddSingleton<ILogEventSink>(logs));
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);

        var error = await client.NextAsync("status", f => f.GetProperty("status").GetString() == "error");
        Assert.That(error.GetProperty("message").GetString(), Is.EqualTo("market data authentication failed"));
        Assert.That(_fake.Connections, Is.Zero);

        await File.WriteAllTextAsync(_tokenFile, FakeUpstox.GoodToken + "\n");

        await client.NextAsync("status", f => f.GetProperty("status").GetString() == "connected");
        Assert.That(_fake.RefusedAuthorizations, Is.GreaterThanOrEqualTo(1));
        Assert.That(logs.Text, Does.Contain("authentication failed"));
        Assert.That(logs.Text, Does.Not.Contain(badToken).And.Not.Contain(FakeUpstox.GoodToken), "the token is never logged");
    }

    [Test]
    public async Task UpstoxSubscriptions_FollowClientReferenceCounts()
    {
        await using var daemon = await StartDaemonAsync();
        await using var first = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await using var second = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await first.SubscribeAsync(Reliance);
        await Eventually.TrueAsync(() => _fake.Subscribed.Contains(Reliance), "sub Reliance");

        await second.SubscribeAsync(Reliance, Infosys);
        await Eventually.TrueAsync(() => _fake.Subscribed.Contains(Infosys), "sub Infosys");
        Assert.That(_fake.Requests.Count(r => r.Method == "sub" && r.Keys.Contains(Reliance)), Is.EqualTo(1), "a second client adds no upstream sub");

        await first.UnsubscribeAsync(Reliance);
        await first.SubscribeAsync(Tcs); // a marker: once it is upstream, the unsubscribe has been processed too
        await Eventually.TrueAsync(() => _fake.Subscribed.Contains(Tcs), "sub TCS");
        Assert.That(_fake.Requests.Any(r => r.Method == "unsub"), Is.False, "Reliance is still wanted by the second client");

        await second.DisposeAsync(); // session end releases Reliance and Infosys

        await Eventually.TrueAsync(() => !_fake.Subscribed.Contains(Reliance) && !_fake.Subscribed.Contains(Infosys), "unsub of the second client's instruments");
        Assert.That(_fake.Subscribed, Is.EquivalentTo(new[] { Tcs }));
    }

    [Test]
    public async Task UpstoxSubscriptions_BatchChangesWithinTheDebounce_IntoOneRequest()
    {
        await using var daemon = await StartDaemonAsync(new() { ["Feed:Upstox:DebounceMs"] = "400" });
        await Eventually.TrueAsync(() => _fake.Connections == 1, "the feed connection");
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);

        await client.SubscribeAsync(Reliance);
        await client.SubscribeAsync(Infosys);
        await client.SubscribeAsync(Tcs);

        await Eventually.TrueAsync(() => _fake.Subscribed.Count == 3, "the subscriptions upstream");
        var subs = _fake.Requests.Where(r => r.Method == "sub").ToList();
        Assert.That(subs, Has.Count.EqualTo(1));
        Assert.That(subs[0].Keys, Is.EquivalentTo(new[] { Reliance, Infosys, Tcs }));
    }

    [Test]
    public async Task UpstoxSubscriptions_RejectWithUpstreamLimit_WhenTheCapIsReached()
    {
        await using var daemon = await StartDaemonAsync(new()
        {
            ["Feed:Upstox:MaxInstruments"] = "2",
            ["Feed:Upstox:AlwaysSubscribe:0"] = Tcs,
        });
        await Eventually.TrueAsync(() => _fake.Subscribed.Contains(Tcs), "AlwaysSubscribe on connect");
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);

        await client.SubscribeAsync(Reliance, Infosys);

        var ack = await client.NextAsync("subscribed");
        Assert.That(ack.GetProperty("instruments").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { Reliance }));
        var rejected = ack.GetProperty("rejected").EnumerateArray().Single();
        Assert.That(rejected.GetProperty("instrument_key").GetString(), Is.EqualTo(Infosys));
        Assert.That(rejected.GetProperty("code").GetString(), Is.EqualTo("upstream_limit"));
        await Eventually.TrueAsync(() => _fake.Subscribed.Contains(Reliance), "sub Reliance");
        Assert.That(_fake.Subscribed, Is.EquivalentTo(new[] { Tcs, Reliance }));
    }

    [Test]
    public async Task UpstoxFeed_DeclaresStallAndReconnects_WhenNothingArrivesWhileTheMarketIsOpen()
    {
        await using var daemon = await StartDaemonAsync(new() { ["Feed:StallSeconds"] = "1" });
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);

        var stalled = await client.NextAsync("status", f => f.GetProperty("message").GetString()!.Contains("stalled"));

        Assert.That(stalled.GetProperty("status").GetString(), Is.EqualTo("disconnected"));
        await Eventually.TrueAsync(() => _fake.Connections >= 2, "a new connection after the stall");
        Assert.That(Volatile.Read(ref daemon.Services.GetRequiredService<FeedMetrics>().Stalls), Is.GreaterThanOrEqualTo(1));
    }

    [Test]
    public async Task UpstoxFeed_FailsAtStart_WithoutAnyToken()
    {
        var error = Assert.CatchAsync(async () => await TestDaemon.StartAsync(new Dictionary<string, string>
        {
            ["Feed:Source"] = "Upstox",
            ["Feed:Upstox:BaseUrl"] = _fake.BaseUri.ToString(),
        }));

        Assert.That(error!.Message, Does.Contain("Feed:Upstox:AccessToken"));
    }

    private Task<TestDaemon> StartDaemonAsync(Dictionary<string, string>? extra = null, Action<IServiceCollection>? configure = null) =>
        TestDaemon.StartAsync(_fake.DaemonSettings(_tokenFile, extra), configure: configure);

    /// <summary>Every log event the daemon writes, rendered with its properties and exception.</summary>
    private sealed class CapturingSink : ILogEventSink
    {
        private readonly List<string> _lines = [];

        public string Text
        {
            get
            {
                lock (_lines)
                {
                    return string.Join('\n', _lines);
                }
            }
        }

        public void Emit(LogEvent logEvent)
        {
            var line = $"{logEvent.RenderMessage()} {JsonSerializer.Serialize(logEvent.Properties.ToDictionary(p => p.Key, p => p.Value.ToString()))} {logEvent.Exception}";
            lock (_lines)
            {
                _lines.Add(line);
            }
        }
    }
}
