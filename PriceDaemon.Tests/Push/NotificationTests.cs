using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Sockets;
using PriceDaemon.Tests.Security;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Push;

/// <summary>User notifications over real sockets: delivery to a user's sockets only, the inbox, acks, replay, dedupe.</summary>
[TestFixture]
public sealed class NotificationTests
{
    [Test]
    public async Task Notification_ReachesEverySocketOfTheUser_AndNoneOfAnother()
    {
        await using var daemon = await TestDaemon.StartAsync(Publisher.Settings());
        using var http = daemon.Http();
        await using var alice1 = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        await using var alice2 = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        await using var bob = await Publisher.ConnectAsync(daemon.WebSocketUri, "bob");
        await Task.WhenAll(alice1.NextAsync("status"), alice2.NextAsync("status"), bob.NextAsync("status"));

        var (status, body) = await Publisher.PublishAsync(http, "alice", """{"id":"trade-8812","kind":"trade","data":{"symbol":"RELIANCE","qty":10,"price":2451.5}}""");
        Assert.That(status, Is.EqualTo(HttpStatusCode.Accepted));
        Assert.That(body.GetProperty("sockets").GetInt32(), Is.EqualTo(2));

        foreach (var alice in new[] { alice1, alice2 })
        {
            var frame = await alice.NextAsync("notification");
            Assert.That(Publisher.Id(frame), Is.EqualTo("trade-8812"));
            Assert.That(frame.GetProperty("kind").GetString(), Is.EqualTo("trade"));
            Assert.That(frame.GetProperty("data").GetProperty("qty").GetInt32(), Is.EqualTo(10));
            Assert.That(frame.GetProperty("created_at").GetString(), Does.EndWith("Z"));
            Assert.That(Publisher.Replayed(frame), Is.False);
        }

        // Bob's socket writes in the order frames were queued: had alice's been queued there, it would come first.
        await Publisher.NotifyAsync(http, "bob", "bob-1");
        Assert.That(Publisher.Id(await bob.NextAsync("notification")), Is.EqualTo("bob-1"));
    }

    [Test]
    public async Task UnackedNotifications_ReplayOnReconnect_AndStopAfterAck()
    {
        await using var daemon = await TestDaemon.StartAsync(Publisher.Settings());
        using var http = daemon.Http();
        await Publisher.NotifyAsync(http, "alice", "trade-1");
        await Publisher.NotifyAsync(http, "alice", "trade-2");

        await using (var first = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice"))
        {
            var replayed = new[] { await first.NextAsync("notification"), await first.NextAsync("notification") };
            Assert.That(replayed.Select(Publisher.Id), Is.EqualTo(new[] { "trade-1", "trade-2" }), "oldest first");
            Assert.That(replayed.All(Publisher.Replayed), Is.True);

            await first.SendAsync("""{"action":"ack","ids":["trade-1","unknown"]}""");
            var acked = await first.NextAsync("acked");
            Assert.That(acked.GetProperty("ids").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "trade-1" }));
        }

        await using (var second = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice"))
        {
            var replayed = await second.NextAsync("notification");
            Assert.That(Publisher.Id(replayed), Is.EqualTo("trade-2"), "trade-1 was acked");
            Assert.That(Publisher.Replayed(replayed), Is.True);
            await second.SendAsync("""{"action":"ack","ids":["trade-2"]}""");
            await second.NextAsync("acked");
        }

        await using var third = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        await third.NextAsync("status");
        await Publisher.NotifyAsync(http, "alice", "marker");
        var next = await third.NextAsync("notification");
        Assert.That(Publisher.Id(next), Is.EqualTo("marker"), "nothing replayed once everything is acked");
        Assert.That(Publisher.Replayed(next), Is.False);
    }

    [Test]
    public async Task RepeatedPublisherId_IsDeliveredOnce_BeforeAndAfterAck()
    {
        await using var daemon = await TestDaemon.StartAsync(Publisher.Settings());
        using var http = daemon.Http();
        await using var alice = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        await alice.NextAsync("status");

        await Publisher.NotifyAsync(http, "alice", "trade-8812");
        var (status, body) = await Publisher.PublishAsync(http, "alice", """{"id":"trade-8812","kind":"trade","data":{}}""");
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(body.GetProperty("duplicate").GetBoolean(), Is.True);

        Assert.That(Publisher.Id(await alice.NextAsync("notification")), Is.EqualTo("trade-8812"));
        await alice.SendAsync("""{"action":"ack","ids":["trade-8812"]}""");
        await alice.NextAsync("acked");
        (status, body) = await Publisher.PublishAsync(http, "alice", """{"id":"trade-8812","kind":"trade","data":{}}""");
        Assert.That(body.GetProperty("duplicate").GetBoolean(), Is.True, "an acked id is remembered too");

        await Publisher.NotifyAsync(http, "alice", "marker");
        Assert.That(Publisher.Id(await alice.NextAsync("notification")), Is.EqualTo("marker"), "no second trade-8812 came before it");
    }

    [Test]
    public async Task PublishApi_RefusesUserTokensAndMissingOrWrongKeys()
    {
        await using var daemon = await TestDaemon.StartAsync(Publisher.Settings());
        using var http = daemon.Http();
        await using var alice = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        await alice.NextAsync("status");
        const string Body = """{"id":"forged","kind":"trade","data":{}}""";

        var userToken = Jwts.Valid("alice", DateTimeOffset.UtcNow);
        foreach (var credential in new[] { userToken, null, "wrong-key", Publisher.Key + "x", Jwts.Secret })
        {
            var (status, body) = await Publisher.PublishAsync(http, "alice", Body, credential);
            Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized), credential ?? "no credential");
            Assert.That(body.GetProperty("code").GetString(), Is.EqualTo("unauthorized"));
        }

        await Publisher.NotifyAsync(http, "alice", "marker");
        Assert.That(Publisher.Id(await alice.NextAsync("notification")), Is.EqualTo("marker"), "nothing refused was delivered");
    }

    [Test]
    public async Task UserWithReservedCharactersInSub_ReceivesNotificationsPublishedToItsUrlEncodedSub()
    {
        // Identity providers put '|' and '/' in subs; '%', '?', '#', spaces and non-ASCII must survive the URL too.
        string[] users = ["google-oauth2|1234/5678", "google-oauth2|1234", "a b/c?d#e", "100%2Fsure", "100/sure", "ünï/çødé"];
        await using var daemon = await TestDaemon.StartAsync(Publisher.Settings());
        using var http = daemon.Http();
        var sockets = new List<TestClient>();
        try
        {
            foreach (var user in users)
            {
                var socket = await Publisher.ConnectAsync(daemon.WebSocketUri, user);
                await socket.NextAsync("status");
                sockets.Add(socket);
            }

            for (var i = 0; i < users.Length; i++)
            {
                var (status, body) = await Publisher.PublishAsync(http, users[i], $$$"""{"id":"for-{{{i}}}","kind":"trade","data":{}}""");
                Assert.That((status, body.GetProperty("sockets").GetInt32()), Is.EqualTo((HttpStatusCode.Accepted, 1)), users[i]);
            }

            for (var i = 0; i < users.Length; i++)
            {
                // Each socket's first notification is its own: one meant for a look-alike sub would have come first.
                Assert.That(Publisher.Id(await sockets[i].NextAsync("notification")), Is.EqualTo($"for-{i}"), users[i]);
            }
        }
        finally
        {
            foreach (var socket in sockets)
            {
                await socket.DisposeAsync();
            }
        }
    }

    [Test]
    public async Task Acks_PastTheConnectionsBudget_AreRateLimited_AndNotApplied()
    {
        await using var daemon = await TestDaemon.StartAsync(Publisher.Settings(("Limits:MaxAcksPerMinute", "2")));
        using var http = daemon.Http();
        await Publisher.NotifyAsync(http, "alice", "trade-1");
        await using (var alice = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice"))
        {
            Assert.That(Publisher.Id(await alice.NextAsync("notification")), Is.EqualTo("trade-1"));
            for (var i = 0; i < 2; i++)
            {
                await alice.SendAsync("""{"action":"ack","ids":["something-else"]}""");
                await alice.NextAsync("acked");
            }

            await alice.SendAsync("""{"action":"ack","ids":["trade-1"]}""");
            var error = await alice.NextAsync("error");
            Assert.That(error.GetProperty("code").GetString(), Is.EqualTo("rate_limited"));
            Assert.That(error.GetProperty("retry_after_ms").GetInt64(), Is.InRange(1, 60_000));
        }

        await using var again = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        var replayed = await again.NextAsync("notification");
        Assert.That((Publisher.Id(replayed), Publisher.Replayed(replayed)), Is.EqualTo(("trade-1", true)), "the refused ack was not applied");
    }

    [Test]
    public async Task AcksOnASocketWithoutAUser_CountAsBadMessages_AndALoopOfThemIsClosed()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Limits:MaxBadMessagesPerMinute"] = "2" });
        await using var anonymous = await TestClient.ConnectAsync(daemon.WebSocketUri);
        for (var i = 0; i < 3; i++)
        {
            await anonymous.SendAsync("""{"action":"ack","ids":["x"]}""");
        }

        Assert.That(await anonymous.WaitClosedAsync(), Is.EqualTo(System.Net.WebSockets.WebSocketCloseStatus.PolicyViolation));
    }

    [TestCase("""{"id":"a","data":{}}""", HttpStatusCode.BadRequest, "missing 'kind'")]
    [TestCase("""{"kind":"trade","extra":1}""", HttpStatusCode.BadRequest, "unknown field 'extra'")]
    [TestCase("""{"kind":7}""", HttpStatusCode.BadRequest, "'kind' must be")]
    [TestCase("""{"kind":"trade","id":""}""", HttpStatusCode.BadRequest, "'id' must be")]
    [TestCase("""[1,2]""", HttpStatusCode.BadRequest, "JSON object")]
    [TestCase("""{"kind":"trade",""", HttpStatusCode.BadRequest, "malformed JSON")]
    [TestCase("""{"kind":"trade","id":"\ud800"}""", HttpStatusCode.BadRequest, "lone surrogate")]
    [TestCase("""{"kind":"tr\udc00ade"}""", HttpStatusCode.BadRequest, "lone surrogate")]
    [TestCase("""{"kind":"trade","data":{"\ud83d":1}}""", HttpStatusCode.BadRequest, "lone surrogate")]
    public async Task PublishApi_RefusesInvalidBodies_WithAClearMessage(string body, HttpStatusCode expected, string message)
    {
        await using var daemon = await TestDaemon.StartAsync(Publisher.Settings());
        using var http = daemon.Http();
        var (status, error) = await Publisher.PublishAsync(http, "alice", body);
        Assert.That(status, Is.EqualTo(expected));
        Assert.That(error.GetProperty("code").GetString(), Is.EqualTo("invalid_body"));
        Assert.That(error.GetProperty("message").GetString(), Does.Contain(message));
    }

    [Test]
    public async Task PublishApi_RefusesOversizedAndNonJsonBodies()
    {
        await using var daemon = await TestDaemon.StartAsync(Publisher.Settings(("Push:MaxBodyBytes", "1024")));
        using var http = daemon.Http();
        var big = "{\"kind\":\"trade\",\"data\":{\"note\":\"" + new string('x', 1100) + "\"}}";
        var (status, error) = await Publisher.PublishAsync(http, "alice", big);
        Assert.That(status, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge));
        Assert.That(error.GetProperty("message").GetString(), Does.Contain("1024 bytes"));

        (status, _) = await Publisher.PublishAsync(http, "alice", """{"kind":"trade"}""", contentType: "text/plain");
        Assert.That(status, Is.EqualTo(HttpStatusCode.UnsupportedMediaType));

        (status, var ok) = await Publisher.PublishAsync(http, "alice", """{"kind":"trade"}""");
        Assert.That(status, Is.EqualTo(HttpStatusCode.Accepted), "without an id the daemon makes one");
        Assert.That(ok.GetProperty("id").GetString(), Does.StartWith("n-"));
    }

    [Test]
    public async Task PublishApi_IsNotMapped_WithoutAPublisherKey()
    {
        // Alerts off too: with them on, users have an inbox (for fired alerts) even without the publish API.
        await using var daemon = await TestDaemon.StartAsync(Jwts.Settings(("Alerts:Enabled", "false")));
        using var http = daemon.Http();
        var (status, _) = await Publisher.PublishAsync(http, "alice", """{"kind":"trade"}""");
        Assert.That(status, Is.EqualTo(HttpStatusCode.NotFound));

        // And an ack is answered with an error, not silence.
        await using var alice = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        await alice.SendAsync("""{"action":"ack","ids":["x"]}""");
        var error = await alice.NextAsync("error");
        Assert.That(error.GetProperty("code").GetString(), Is.EqualTo("notifications_unavailable"));
    }

    [Test]
    public async Task PublishApi_RefusesNotifications_WhenSocketsAreAnonymous()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Push:PublisherKey"] = Publisher.Key });
        using var http = daemon.Http();
        var (status, error) = await Publisher.PublishAsync(http, "alice", """{"kind":"trade"}""");
        Assert.That(status, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(error.GetProperty("message").GetString(), Does.Contain("Auth:Mode=Jwt"));
    }

    [Test]
    public async Task Inbox_KeepsTheNewest_WhenAUserHasMoreThanTheLimit()
    {
        await using var daemon = await TestDaemon.StartAsync(Publisher.Settings(("Push:InboxMaxPerUser", "3")));
        using var http = daemon.Http();
        for (var i = 1; i <= 5; i++)
        {
            await Publisher.NotifyAsync(http, "alice", $"n-{i}");
        }

        await using var alice = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(Publisher.Id(await alice.NextAsync("notification")));
        }

        Assert.That(ids, Is.EqualTo(new[] { "n-3", "n-4", "n-5" }));
        var metrics = await http.GetStringAsync("/metrics");
        Assert.That(metrics, Does.Contain("pricedaemon_notifications_expired_total 2"));
    }

    [Test]
    public async Task SlowSocket_IsClosed_AndTheInboxKeepsItsNotifications()
    {
        await using var daemon = await TestDaemon.StartAsync(
            Publisher.Settings(("Limits:SlowConsumerSeconds", "600"), ("Push:InboxMaxPerUser", "200")), configure: TestDaemon.SmallSendBuffers);
        using var http = daemon.Http();
        await using var stalled = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice", startReading: false);
        await Eventually.TrueAsync(() => daemon.Services.GetRequiredService<SessionRegistry>().SessionsOf("alice").Length == 1, "alice's socket registered");

        // 300 notifications of 2 KB: far more than a 4 KB socket buffer and then the 256-frame control queue take.
        var data = $"{{\"note\":\"{new string('x', 2048)}\"}}";
        for (var i = 1; i <= 300; i++)
        {
            await Publisher.NotifyAsync(http, "alice", $"n-{i}", data: data);
        }

        await Eventually.TrueAsync(() => daemon.Services.GetRequiredService<SessionRegistry>().SessionsOf("alice").Length == 0, "the stalled socket closed");
        var metrics = await http.GetStringAsync("/metrics");
        Assert.That(metrics, Does.Contain("pricedaemon_sessions_slow_consumer_closed_total 1"));

        await using var alice = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        var ids = new List<string>();
        for (var i = 0; i < 200; i++)
        {
            ids.Add(Publisher.Id(await alice.NextAsync("notification")));
        }

        Assert.That(ids, Is.EqualTo(Enumerable.Range(101, 200).Select(i => $"n-{i}")), "the inbox's newest 200, in order: what the slow socket missed is kept");
    }

    [Test]
    public async Task UnackedNotification_IsNotReplayed_OnceOlderThanTheInboxKeepsThem()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var daemon = await TestDaemon.StartAsync(
            Publisher.Settings(("Push:InboxMaxAgeMinutes", "1"), ("Limits:IdleTimeoutSeconds", "0")), time);
        using var http = daemon.Http();
        await Publisher.NotifyAsync(http, "alice", "old");
        time.Advance(TimeSpan.FromSeconds(59));
        await using (var before = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice", time.GetUtcNow()))
        {
            Assert.That(Publisher.Id(await before.NextAsync("notification")), Is.EqualTo("old"), "still within the age");
        }

        time.Advance(TimeSpan.FromSeconds(2));
        await using var after = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice", time.GetUtcNow());
        await after.NextAsync("status");
        await Publisher.NotifyAsync(http, "alice", "marker");
        Assert.That(Publisher.Id(await after.NextAsync("notification")), Is.EqualTo("marker"), "the old one aged out unacked");
    }
}
