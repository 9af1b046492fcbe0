using System.Net;
using Microsoft.Extensions.DependencyInjection;
using PriceDaemon.Push;
using PriceDaemon.Tests.Security;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Push;

/// <summary>Topics over real sockets: the current value at once, each new one after, conflated for a socket that is behind.</summary>
[TestFixture]
public sealed class TopicTests
{
    private static (string Key, string Value)[] Topics(params (string Key, string Value)[] extra) =>
    [
        ("Push:Topics:0:Name", "leaderboard"),
        ("Push:Topics:0:AllowAnonymous", "true"),
        ("Push:Topics:1:Name", "desk"),
        .. extra,
    ];

    private static Dictionary<string, string> Anonymous(params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string> { ["Push:PublisherKey"] = Publisher.Key };
        foreach (var (key, value) in Topics(extra))
        {
            settings[key] = value;
        }

        return settings;
    }

    [Test]
    public async Task Topic_GivesTheCurrentValueAtOnce_AndEachNewOne()
    {
        await using var daemon = await TestDaemon.StartAsync(Anonymous());
        using var http = daemon.Http();
        Assert.That(await SetAsync(http, "leaderboard", """{"top":["alice"]}"""), Is.EqualTo(HttpStatusCode.OK));

        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SendAsync("""{"action":"subscribe","channel":"topic","topics":["leaderboard"]}""");
        var ack = await client.NextAsync("subscribed");
        Assert.That(ack.GetProperty("channel").GetString(), Is.EqualTo("topic"));
        Assert.That(ack.GetProperty("topics").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "leaderboard" }));

        var current = await client.NextAsync("topic");
        Assert.That(current.GetProperty("topic").GetString(), Is.EqualTo("leaderboard"));
        Assert.That(current.GetProperty("seq").GetInt64(), Is.EqualTo(1));
        Assert.That(current.GetProperty("data").GetProperty("top")[0].GetString(), Is.EqualTo("alice"));

        await SetAsync(http, "leaderboard", """{"top":["bob","alice"]}""");
        var next = await client.NextAsync("topic");
        Assert.That(next.GetProperty("seq").GetInt64(), Is.EqualTo(2));
        Assert.That(next.GetProperty("data").GetProperty("top")[0].GetString(), Is.EqualTo("bob"));

        await client.SendAsync("""{"action":"unsubscribe","channel":"topic","topics":["leaderboard"]}""");
        Assert.That((await client.NextAsync("subscribed")).GetProperty("topics").GetArrayLength(), Is.Zero);
        await SetAsync(http, "leaderboard", """{"top":[]}""");
        await client.SendAsync("""{"action":"subscribe","channel":"topic","topics":["leaderboard"]}""");
        Assert.That((await client.NextAsync("topic")).GetProperty("seq").GetInt64(), Is.EqualTo(3), "nothing while unsubscribed; the current value on subscribing again");
    }

    [Test]
    public async Task TopicSubscribe_RejectsUnknownTopics_AndTopicsAnonymousSocketsMayNotRead()
    {
        await using var daemon = await TestDaemon.StartAsync(Anonymous());
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SendAsync("""{"action":"subscribe","channel":"topic","topics":["leaderboard","desk","nope"]}""");
        var ack = await client.NextAsync("subscribed");
        Assert.That(ack.GetProperty("topics").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "leaderboard" }));
        var rejected = ack.GetProperty("rejected").EnumerateArray().Select(r => (r.GetProperty("topic").GetString(), r.GetProperty("code").GetString())).ToList();
        Assert.That(rejected, Is.EqualTo(new[] { ("desk", "topic_forbidden"), ("nope", "unknown_topic") }));

        await client.SendAsync("""{"action":"subscribe","channel":"level3","instruments":["NSE_EQ|INE002A01018"]}""");
        Assert.That((await client.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("unknown_channel"));
    }

    [Test]
    public async Task TopicSubscribe_AllowsSignedInUsers_TopicsClosedToAnonymousOnes()
    {
        await using var daemon = await TestDaemon.StartAsync(Publisher.Settings(Topics()));
        using var http = daemon.Http();
        await SetAsync(http, "desk", """{"pnl":12.5}""");
        await using var alice = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        await alice.SendAsync("""{"action":"subscribe","channel":"topic","topics":["desk"]}""");
        Assert.That((await alice.NextAsync("topic")).GetProperty("data").GetProperty("pnl").GetDouble(), Is.EqualTo(12.5));
    }

    [Test]
    public async Task Topic_IsConflatedForASlowSocket_LatestWins_AndTheSocketStaysOpen()
    {
        await using var daemon = await TestDaemon.StartAsync(Anonymous(("Limits:SlowConsumerSeconds", "600")), configure: TestDaemon.SmallSendBuffers);
        using var http = daemon.Http();
        await using var slow = await TestClient.ConnectAsync(daemon.WebSocketUri, startReading: false);
        await slow.SendAsync("""{"action":"subscribe","channel":"topic","topics":["leaderboard"]}""");
        var topics = daemon.Services.GetRequiredService<TopicCache>();
        topics.TryGet("leaderboard", out var id, out _);
        await Eventually.TrueAsync(() => topics.Subscribers(id) == 1, "the slow socket subscribed");

        // 300 values of 2 KB: 600 KB, far more than the socket's buffers hold while it does not read.
        const int Values = 300;
        var padding = new string('x', 2048);
        for (var i = 1; i <= Values; i++)
        {
            Assert.That(await SetAsync(http, "leaderboard", $$"""{"n":{{i}},"pad":"{{padding}}"}"""), Is.EqualTo(HttpStatusCode.OK));
        }

        slow.StartReading();
        var frames = await slow.CollectUntilAsync(f => f.GetProperty("type").GetString() == "topic" && f.GetProperty("seq").GetInt64() == Values);
        var seqs = frames.Where(f => f.GetProperty("type").GetString() == "topic").Select(f => f.GetProperty("seq").GetInt64()).ToList();
        Assert.That(seqs, Is.Ordered.Ascending.And.Unique, "never an older value after a newer one");
        Assert.That(seqs[^1], Is.EqualTo(Values), "the latest value arrives");
        Assert.That(seqs.Count, Is.LessThan(Values), "values the socket was too slow for were replaced, not queued");
        TestContext.Out.WriteLine($"{seqs.Count} of {Values} values written");

        // Conflated, not closed: the socket still gets the next value.
        await SetAsync(http, "leaderboard", """{"n":0}""");
        Assert.That((await slow.NextAsync("topic")).GetProperty("seq").GetInt64(), Is.EqualTo(Values + 1));
    }

    [Test]
    public async Task TopicApi_RefusesUserTokens_AndUnknownTopics()
    {
        await using var daemon = await TestDaemon.StartAsync(Publisher.Settings(Topics()));
        using var http = daemon.Http();
        Assert.That(await SetAsync(http, "leaderboard", "{}", Jwts.Valid("alice", DateTimeOffset.UtcNow)), Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(await SetAsync(http, "nope", "{}"), Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(await SetAsync(http, "leaderboard", "{"), Is.EqualTo(HttpStatusCode.BadRequest));
    }

    private static async Task<HttpStatusCode> SetAsync(HttpClient http, string topic, string body, string credential = Publisher.Key) =>
        (await Publisher.SetTopicAsync(http, topic, body, credential)).Status;
}
