using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Feeds;
using PriceDaemon.Pipeline;
using PriceDaemon.Tests.Security;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Depth;

/// <summary>The depth and book channels over real sockets: subscribe, ack, frames, conflation order, limits.</summary>
[TestFixture]
public sealed class DepthSocketTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";
    private const string Infosys = "NSE_EQ|INE009A01021";

    internal static DepthBook Book(int id, int levels, double bestBid, long timeUs = 1_768_795_200_000_000, PriceSource source = PriceSource.Live)
    {
        var bids = Enumerable.Range(0, levels).Select(i => new DepthLevel(Math.Round(bestBid - (i * 0.05), 2), 100 + i, 1 + i)).ToArray();
        var asks = Enumerable.Range(0, levels).Select(i => new DepthLevel(Math.Round(bestBid + 0.05 + (i * 0.05), 2), 200 + i, 2 + i)).ToArray();
        return new DepthBook(id, bids, asks, timeUs, 0, source);
    }

    internal static List<double[]> Levels(JsonElement frame, string side) =>
        [.. frame.GetProperty("data").GetProperty(side).EnumerateArray().Select(l => l.EnumerateArray().Select(v => v.GetDouble()).ToArray())];

    [Test]
    public async Task DepthSubscribe_AcksTheChannel_AndSendsFiveLevelsAndTheBookThirty()
    {
        await using var daemon = await TestDaemon.StartAsync();
        var ingest = daemon.Services.GetRequiredService<DepthIngest>();
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);

        await client.SendAsync($$"""{"action":"subscribe","channel":"depth","instruments":["{{Reliance}}","NSE_EQ|NOPE"]}""");
        var ack = await client.NextAsync("subscribed");
        Assert.That(ack.GetProperty("channel").GetString(), Is.EqualTo("depth"));
        Assert.That(ack.GetProperty("instruments").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { Reliance }));
        Assert.That(ack.GetProperty("rejected")[0].GetProperty("code").GetString(), Is.EqualTo("unknown_instrument"));
        await client.SendAsync($$"""{"action":"subscribe","channel":"book","instruments":["{{Reliance}}"]}""");
        Assert.That((await client.NextAsync("subscribed")).GetProperty("channel").GetString(), Is.EqualTo("book"));

        ingest.Write(Book(daemon.Id(Reliance), 30, 2451.45));
        var depth = await client.NextAsync("depth");
        Assert.That(depth.GetProperty("instrument_key").GetString(), Is.EqualTo(Reliance));
        Assert.That(Levels(depth, "bids"), Has.Count.EqualTo(5));
        Assert.That(Levels(depth, "bids")[0], Is.EqualTo(new[] { 2451.45, 100, 1 }));
        Assert.That(Levels(depth, "asks")[0], Is.EqualTo(new[] { 2451.5, 200, 2 }));
        var data = depth.GetProperty("data");
        Assert.That(data.GetProperty("timestamp").GetString(), Is.EqualTo("2026-01-19T04:00:00.000Z"));
        Assert.That(data.GetProperty("seq").GetInt64(), Is.EqualTo(1));
        Assert.That(data.GetProperty("source").GetString(), Is.EqualTo("live"));
        Assert.That(data.TryGetProperty("stale", out _), Is.False);

        var book = await client.NextAsync("book");
        Assert.That(Levels(book, "bids"), Has.Count.EqualTo(30));
        Assert.That(Levels(book, "asks")[29][0], Is.EqualTo(2452.95));

        await client.SendAsync($$"""{"action":"unsubscribe","channel":"depth","instruments":["{{Reliance}}"]}""");
        var after = await client.NextAsync("subscribed");
        Assert.That(after.GetProperty("action").GetString(), Is.EqualTo("unsubscribe"));
        Assert.That(after.GetProperty("instruments").GetArrayLength(), Is.Zero);
        ingest.Write(Book(daemon.Id(Reliance), 30, 2452));
        var frames = await client.CollectUntilAsync(f => f.GetProperty("type").GetString() == "book" && f.GetProperty("data").GetProperty("seq").GetInt64() == 2);
        Assert.That(Levels(frames[^1], "bids")[0][0], Is.EqualTo(2452));
        Assert.That(frames.Count(f => f.GetProperty("type").GetString() == "depth"), Is.Zero, "no depth after its unsubscribe");
    }

    [Test]
    public async Task DepthSubscribe_AnswersWithTheCachedBook_LabelledStaleWhileTheFeedIsDown()
    {
        await using var daemon = await TestDaemon.StartAsync();
        var ingest = daemon.Services.GetRequiredService<DepthIngest>();
        var stage = daemon.Services.GetRequiredService<DepthStage>();
        await using var first = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await first.SendAsync($$"""{"action":"subscribe","channel":"depth","instruments":["{{Infosys}}"]}""");
        await first.NextAsync("subscribed");
        ingest.Write(Book(daemon.Id(Infosys), 5, 1500));
        await first.NextAsync("depth");
        Assert.That(stage.Depth.Get(daemon.Id(Infosys)), Is.Not.Null);

        // Feed:Source=None: the feed is never connected, so a cached book is last known, not live.
        await using var second = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await second.SendAsync($$"""{"action":"subscribe","channel":"depth","instruments":["{{Infosys}}"]}""");
        var snapshot = await second.NextAsync("depth");
        Assert.That(snapshot.GetProperty("data").GetProperty("stale").GetBoolean(), Is.True);
        Assert.That(snapshot.GetProperty("data").GetProperty("seq").GetInt64(), Is.EqualTo(1));
        Assert.That(Levels(snapshot, "bids")[0][0], Is.EqualTo(1500));
    }

    [Test]
    public async Task DepthAndBook_EachCountAsOneSubscription_AgainstTheConnectionLimit()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Limits:MaxSubscriptionsPerConnection"] = "2" });
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SubscribeAsync(Reliance);
        await client.NextAsync("subscribed");
        await client.SendAsync($$"""{"action":"subscribe","channel":"depth","instruments":["{{Reliance}}"]}""");
        Assert.That((await client.NextAsync("subscribed")).GetProperty("instruments").GetArrayLength(), Is.EqualTo(1));

        await client.SendAsync($$"""{"action":"subscribe","channel":"book","instruments":["{{Reliance}}"]}""");
        var refused = await client.NextAsync("subscribed");
        Assert.That(refused.GetProperty("channel").GetString(), Is.EqualTo("book"));
        Assert.That(refused.GetProperty("instruments").GetArrayLength(), Is.Zero);
        Assert.That(refused.GetProperty("rejected")[0].GetProperty("code").GetString(), Is.EqualTo("subscription_limit"));

        await client.SubscribeAsync(Infosys);
        var price = await client.NextAsync("subscribed");
        Assert.That(price.GetProperty("rejected")[0].GetProperty("code").GetString(), Is.EqualTo("subscription_limit"), "the depth subscription holds the second place");

        await client.SendAsync($$"""{"action":"unsubscribe","channel":"depth","instruments":["{{Reliance}}"]}""");
        await client.NextAsync("subscribed");
        await client.SendAsync($$"""{"action":"subscribe","channel":"book","instruments":["{{Reliance}}"]}""");
        Assert.That((await client.NextAsync("subscribed")).GetProperty("instruments").GetArrayLength(), Is.EqualTo(1), "the place came back");
    }

    [Test]
    public async Task DepthAndBook_CountAgainstTheUsersLimit_AcrossConnections()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-19T04:00:00Z"));
        await using var daemon = await TestDaemon.StartAsync(Jwts.Settings(("Limits:MaxSubscriptionsPerUser", "2")), time);
        var token = Jwts.Valid("alice", time.GetUtcNow());
        void Bearer(System.Net.WebSockets.ClientWebSocketOptions o) => o.SetRequestHeader("Authorization", "Bearer " + token);
        await using var first = await SecureClient.ConnectAsync(daemon.WebSocketUri, Bearer);
        await using var second = await SecureClient.ConnectAsync(daemon.WebSocketUri, Bearer);

        await first.SendAsync($$"""{"action":"subscribe","channel":"depth","instruments":["{{Reliance}}"]}""");
        Assert.That((await first.NextAsync("subscribed")).GetProperty("rejected").GetArrayLength(), Is.Zero);
        await second.SendAsync($$"""{"action":"subscribe","channel":"book","instruments":["{{Reliance}}","{{Infosys}}"]}""");
        var ack = await second.NextAsync("subscribed");
        Assert.That(ack.GetProperty("channel").GetString(), Is.EqualTo("book"));
        Assert.That(ack.GetProperty("instruments").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { Reliance }));
        Assert.That(ack.GetProperty("rejected")[0].GetProperty("code").GetString(), Is.EqualTo("subscription_limit"), "alice's second place went to the book of Reliance");

        await first.DisposeAsync(); // the depth subscription comes back with its connection
        // A session leaves the registry after its receive loop handed everything back.
        await Eventually.TrueAsync(() => daemon.Services.GetRequiredService<PriceDaemon.Sockets.SessionRegistry>().Count == 1, "the first connection's release");
        await second.SendAsync($$"""{"action":"subscribe","channel":"depth","instruments":["{{Infosys}}"]}""");
        Assert.That((await second.NextAsync("subscribed")).GetProperty("rejected").GetArrayLength(), Is.Zero);
    }

    [Test]
    public async Task DepthFrames_AreThrottledPerInstrument_LatestBookWins()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-19T04:00:00Z"));
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Throttle:MinIntervalMs"] = "1000" }, time);
        var ingest = daemon.Services.GetRequiredService<DepthIngest>();
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SendAsync($$"""{"action":"subscribe","channel":"depth","instruments":["{{Reliance}}"]}""");
        await client.NextAsync("subscribed");
        var id = daemon.Id(Reliance);

        ingest.Write(Book(id, 5, 2400));
        Assert.That(Levels(await client.NextAsync("depth"), "bids")[0][0], Is.EqualTo(2400), "an open window emits at once");
        ingest.Write(Book(id, 5, 2401));
        ingest.Write(Book(id, 5, 2402));
        Assert.That(Volatile.Read(ref ingest.Replaced), Is.EqualTo(1), "the window is closed: the newer book replaced the older one in the mailbox");
        time.Advance(TimeSpan.FromSeconds(1));

        var frames = await client.CollectUntilAsync(f => f.GetProperty("type").GetString() == "depth");
        var data = frames[^1].GetProperty("data");
        Assert.That(data.GetProperty("seq").GetInt64(), Is.EqualTo(2));
        Assert.That(Levels(frames[^1], "bids")[0][0], Is.EqualTo(2402), "latest book wins");
    }
}
