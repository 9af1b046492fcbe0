using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using NATS.Client.Core;
using NATS.Net;
using PriceDaemon.Nats;
using PriceDaemon.Push;
using PriceDaemon.Tests.Push;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Nats;

/// <summary>
/// Pushes across edges: two (or three) daemon hosts with <c>Feed:Source=Nats</c> and pushes on, through a real
/// <c>nats-server -js</c> on a free port. Notifications, acks, topics and announcements published on one edge reach
/// the sockets of the others, once each, and an edge started later serves what is current.
/// </summary>
[NonParallelizable]
public sealed class NatsPushTests() : NatsServerTests("pricedaemon-natspush-")
{
    [Test]
    public async Task Notification_PublishedOnOneEdge_ReachesTheUserOnTheOther_ReplaysOnTheFirst_AndAnAckStopsItEverywhere()
    {
        var (edge1, edge2) = (await StartEdgeAsync(), await StartEdgeAsync());
        using var http1 = edge1.Http();
        using var http2 = edge2.Http();
        await using var bob = await ConnectedAsync(edge2, "bob");
        var notification = await Deliver(edge2, "alice", async () => await Publisher.NotifyAsync(http1, "alice", "trade-1"));
        Assert.That(Publisher.Replayed(notification), Is.False, "delivered live on edge 2");
        Assert.That(notification.GetProperty("data").GetProperty("qty").GetInt32(), Is.EqualTo(10));

        // Bob's socket writes in the order frames were queued: had alice's been queued there, it would come first.
        await Publisher.NotifyAsync(http1, "bob", "bob-1");
        Assert.That(Publisher.Id(await bob.NextAsync("notification")), Is.EqualTo("bob-1"));

        // Reconnecting to edge 1, where it was published: still unacked, so it replays there.
        await using (var alice = await Publisher.ConnectAsync(edge1.WebSocketUri, "alice"))
        {
            var replayed = await alice.NextAsync("notification");
            Assert.That((Publisher.Id(replayed), Publisher.Replayed(replayed)), Is.EqualTo(("trade-1", true)));
            await alice.SendAsync("""{"action":"ack","ids":["trade-1"]}""");
            Assert.That((await alice.NextAsync("acked")).GetProperty("ids")[0].GetString(), Is.EqualTo("trade-1"));
        }

        // The ack reaches edge 2 through the bucket; then a socket there gets nothing replayed.
        var metrics2 = edge2.Services.GetRequiredService<NatsMetrics>();
        await Eventually.TrueAsync(() => Volatile.Read(ref metrics2.PushReceived[PushKinds.Ack]) == 1, "edge 2 to learn of the ack made on edge 1");
        await using var again = await ConnectedAsync(edge2, "alice");
        await Publisher.NotifyAsync(http2, "alice", "marker");
        var next = await again.NextAsync("notification");
        Assert.That((Publisher.Id(next), Publisher.Replayed(next)), Is.EqualTo(("marker", false)), "trade-1 is not replayed after its ack on the other edge");

        Assert.That(metrics2.PushReceived[PushKinds.Notification], Is.GreaterThanOrEqualTo(2), "trade-1 and bob-1 came to edge 2 from the bucket");
        Assert.That(edge1.Services.GetRequiredService<NatsMetrics>().PushPublished[PushKinds.Ack], Is.EqualTo(1));
        Assert.That(await http2.GetStringAsync(new Uri("/metrics", UriKind.Relative)), Does.Contain("pricedaemon_nats_push_received_total{kind=\"ack\"} 1\n"));
    }

    [Test]
    public async Task Notification_ToASubWithReservedOrManyCharacters_CrossesEdges()
    {
        var (edge1, edge2) = (await StartEdgeAsync(), await StartEdgeAsync());
        using var http1 = edge1.Http();
        // A '/' in the URL (encoded) and in the bucket key (escaped); a sub whose escaped key is named by its hash.
        foreach (var user in new[] { "google-oauth2|1234/5678", string.Concat(Enumerable.Repeat("🚀", 128)) })
        {
            var notification = await Deliver(edge2, user, async () => await Publisher.NotifyAsync(http1, user, "trade-1"));
            Assert.That(Publisher.Id(notification), Is.EqualTo("trade-1"), user);
        }
    }

    [Test]
    public async Task RepeatedId_PublishedToBothEdges_IsDeliveredOncePerSocket()
    {
        var (edge1, edge2) = (await StartEdgeAsync(), await StartEdgeAsync());
        using var http1 = edge1.Http();
        using var http2 = edge2.Http();
        await using var on1 = await ConnectedAsync(edge1, "alice");
        await using var on2 = await ConnectedAsync(edge2, "alice");

        // At once on both edges: the bucket takes one create, the other is a duplicate, whichever edge it reached.
        const string Body = """{"id":"trade-7","kind":"trade","data":{"qty":7}}""";
        var answers = await Task.WhenAll(Publisher.PublishAsync(http1, "alice", Body), Publisher.PublishAsync(http2, "alice", Body));
        Assert.That(answers.Select(a => a.Status), Is.EquivalentTo(new[] { HttpStatusCode.Accepted, HttpStatusCode.OK }));
        Assert.That(answers.Single(a => a.Status == HttpStatusCode.OK).Body.GetProperty("duplicate").GetBoolean(), Is.True);

        // And again later, on each edge.
        foreach (var http in new[] { http1, http2 })
        {
            var (status, body) = await Publisher.PublishAsync(http, "alice", Body);
            Assert.That((status, body.GetProperty("duplicate").GetBoolean()), Is.EqualTo((HttpStatusCode.OK, true)));
        }

        await Publisher.NotifyAsync(http2, "alice", "marker");
        foreach (var socket in new[] { on1, on2 })
        {
            var frames = await socket.CollectUntilAsync(f => f.GetProperty("type").GetString() == "notification" && Publisher.Id(f) == "marker");
            Assert.That(frames.Where(f => f.GetProperty("type").GetString() == "notification").Select(Publisher.Id), Is.EqualTo(new[] { "trade-7", "marker" }));
        }
    }

    [Test]
    public async Task TopicAndAnnouncement_CrossEdges_AndReachAnEdgeStartedLater()
    {
        var (edge1, edge2) = (await StartEdgeAsync(), await StartEdgeAsync());
        using var http1 = edge1.Http();
        using var http2 = edge2.Http();
        await using var watcher = await ConnectedAsync(edge2, "carol");
        await watcher.SendAsync("""{"action":"subscribe","channel":"topic","topics":["leaderboard"]}""");
        await watcher.NextAsync("subscribed");

        var (status, body) = await Publisher.SetTopicAsync(http1, "leaderboard", """{"top":["alice"]}""");
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        var seq = body.GetProperty("seq").GetInt64();
        var value = await watcher.NextAsync("topic");
        Assert.That((value.GetProperty("seq").GetInt64(), value.GetProperty("data").GetProperty("top")[0].GetString()), Is.EqualTo((seq, "alice")), "the bucket's revision is the seq on every edge");

        var expires = DateTimeOffset.UtcNow.AddHours(1);
        Assert.That((await Publisher.AnnounceAsync(http1, "maint-1", "warning", "Maintenance at 18:00", expires)).Status, Is.EqualTo(HttpStatusCode.Accepted));
        Assert.That((await Publisher.AnnounceAsync(http1, "gone-1", "info", "Soon withdrawn", expires)).Status, Is.EqualTo(HttpStatusCode.Accepted));
        Assert.That(Publisher.Id(await watcher.NextAsync("announcement")), Is.EqualTo("maint-1"));
        Assert.That(Publisher.Id(await watcher.NextAsync("announcement")), Is.EqualTo("gone-1"));
        var (again, _) = await Publisher.AnnounceAsync(http2, "maint-1", "warning", "Maintenance at 18:00", expires);
        Assert.That(again, Is.EqualTo(HttpStatusCode.OK), "the id is in force: a duplicate on the other edge too");

        // Withdrawn on edge 2: the socket on edge 1 is told, and a later edge never shows it.
        await using var onEdge1 = await ConnectedAsync(edge1, "dave");
        Assert.That(await Publisher.DeleteAnnouncementAsync(http2, "gone-1"), Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That(Publisher.Id(await onEdge1.NextAsync("announcement_removed")), Is.EqualTo("gone-1"));

        var late = await StartEdgeAsync();
        using var lateHttp = late.Http();
        await using var client = await Publisher.ConnectAsync(late.WebSocketUri, "erin");
        await Publisher.AnnounceAsync(lateHttp, "marker", "info", "marker", expires);
        var frames = await client.CollectUntilAsync(f => f.GetProperty("type").GetString() == "announcement" && Publisher.Id(f) == "marker");
        Assert.That(frames.Where(f => f.GetProperty("type").GetString() == "announcement").Select(Publisher.Id), Is.EqualTo(new[] { "maint-1", "marker" }), "the one in force at connect, not the withdrawn one");

        await client.SendAsync("""{"action":"subscribe","channel":"topic","topics":["leaderboard"]}""");
        var current = await client.NextAsync("topic");
        Assert.That((current.GetProperty("seq").GetInt64(), current.GetProperty("data").GetProperty("top")[0].GetString()), Is.EqualTo((seq, "alice")), "the current value, with its shared seq");
    }

    [Test]
    public async Task NatsDown_PublishesAre503AndDeliverNothing_AcksAreWrittenWhenItReturns()
    {
        var (edge1, edge2) = (await StartEdgeAsync(), await StartEdgeAsync());
        using var http1 = edge1.Http();
        await Deliver(edge2, "alice", async () => await Publisher.NotifyAsync(http1, "alice", "trade-1"));
        await using var alice = await ConnectedAsync(edge1, "alice");
        Assert.That(Publisher.Id(await alice.NextAsync("notification")), Is.EqualTo("trade-1"), "replayed on edge 1");

        await Server.StopAsync();
        var link = edge1.Services.GetRequiredService<NatsLink>();
        await Eventually.TrueAsync(() => !link.IsOpen, "edge 1 to see NATS gone");

        var (status, body) = await Publisher.PublishAsync(http1, "alice", """{"id":"trade-2","kind":"trade","data":{}}""");
        Assert.That((status, body.GetProperty("code").GetString()), Is.EqualTo((HttpStatusCode.ServiceUnavailable, "nats_unavailable")));
        Assert.That((await Publisher.SetTopicAsync(http1, "leaderboard", "{}")).Status, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That((await Publisher.AnnounceAsync(http1, "a-1", "info", "x", DateTimeOffset.UtcNow.AddHours(1))).Status, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That(edge1.Services.GetRequiredService<NatsMetrics>().PushUnavailable, Is.EqualTo(3));

        // An ack while NATS is away is taken here at once and queued for the bucket.
        await alice.SendAsync("""{"action":"ack","ids":["trade-1"]}""");
        await alice.NextAsync("acked");

        await Server.StartAsync();
        var inbox2 = edge2.Services.GetRequiredService<NotificationInbox>();
        await Eventually.TrueAsync(() => Volatile.Read(ref inbox2.Pending) == 0, "the queued ack to reach edge 2 once NATS is back");

        // trade-2 was refused, not half-delivered: the retry is new, and is the next notification this socket gets.
        using var http2 = edge2.Http();
        await Eventually.ValueAsync(
            async () => (await Publisher.PublishAsync(http2, "alice", """{"id":"trade-2","kind":"trade","data":{}}""")).Status == HttpStatusCode.Accepted ? this : null,
            "a publish to be accepted once NATS is back");
        Assert.That(Publisher.Id(await alice.NextAsync("notification")), Is.EqualTo("trade-2"));
    }

    [Test]
    public async Task InboxCount_IsKeptOnEveryEdge_AndWhatItExpiredNeverReachesALaterEdge()
    {
        var (edge1, edge2) = (await StartEdgeAsync(("Push:InboxMaxPerUser", "2")), await StartEdgeAsync(("Push:InboxMaxPerUser", "2")));
        using var http1 = edge1.Http();
        foreach (var id in new[] { "n1", "n2", "n3" })
        {
            await Publisher.NotifyAsync(http1, "alice", id);
        }

        var metrics1 = edge1.Services.GetRequiredService<NatsMetrics>();
        var metrics2 = edge2.Services.GetRequiredService<NatsMetrics>();
        await Eventually.TrueAsync(
            () => Volatile.Read(ref metrics2.PushReceived[PushKinds.Notification]) == 3 && Volatile.Read(ref metrics1.PushPublished[PushKinds.Expire]) == 1,
            "edge 2 to take the three, and edge 1 to delete the one it expired from the bucket");

        await using (var connection = new NatsConnection(new NatsOpts { Url = Server.Url }))
        {
            var bucket = await connection.CreateKeyValueStoreContext().GetStoreAsync("push-inbox");
            var keys = new List<string>();
            await foreach (var key in bucket.GetKeysAsync())
            {
                keys.Add(key);
            }

            Assert.That(keys, Is.EquivalentTo(new[] { "alice.n2", "alice.n3" }), "the bucket holds what every edge keeps");
        }

        var late = await StartEdgeAsync(("Push:InboxMaxPerUser", "2"));
        foreach (var edge in new[] { edge1, edge2, late })
        {
            await using var alice = await Publisher.ConnectAsync(edge.WebSocketUri, "alice");
            var replayed = new[] { await alice.NextAsync("notification"), await alice.NextAsync("notification") };
            Assert.That(replayed.Select(Publisher.Id), Is.EqualTo(new[] { "n2", "n3" }), $"edge {Daemons.IndexOf(edge) + 1}: the newest two, oldest first");
            Assert.That(replayed.All(Publisher.Replayed), Is.True);
        }
    }

    private async Task<TestDaemon> StartEdgeAsync(params (string Key, string Value)[] extra)
    {
        var edge = await TestDaemon.StartAsync(Publisher.Settings(
            [("Feed:Source", "Nats"), ("Nats:Url", Server.Url), ("Nats:ReconnectMinMs", "50"), ("Nats:ReconnectMaxMs", "200"),
            ("Push:Topics:0:Name", "leaderboard"), ("Push:Topics:0:AllowAnonymous", "true"), .. extra]));
        Daemons.Add(edge);
        return edge;
    }

    private static async Task<TestClient> ConnectedAsync(TestDaemon edge, string user)
    {
        var client = await Publisher.ConnectAsync(edge.WebSocketUri, user);
        await client.NextAsync("status");
        return client;
    }

    /// <summary>Runs <paramref name="publish"/> with <paramref name="user"/> connected to <paramref name="edge"/>; the notification that socket gets.</summary>
    private static async Task<JsonElement> Deliver(TestDaemon edge, string user, Func<Task> publish)
    {
        await using var socket = await ConnectedAsync(edge, user);
        await publish();
        return await socket.NextAsync("notification");
    }
}
