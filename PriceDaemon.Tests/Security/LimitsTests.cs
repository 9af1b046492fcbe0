using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Sockets;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Security;

/// <summary>The guide's limits, each with its error or close code, and each per user: one user's use never limits another.</summary>
public sealed class LimitsTests
{
    private static readonly string[] _keys =
    [
        "NSE_EQ|INE002A01018", "NSE_EQ|INE467B01029", "NSE_EQ|INE009A01021", "NSE_EQ|INE040A01034", "NSE_EQ|INE090A01021",
    ];

    private static readonly DateTimeOffset _start = new(2026, 1, 19, 9, 15, 0, TimeSpan.Zero);

    [Test]
    public async Task SubscriptionsPerUser_CountAcrossConnections_AndRejectTheRest_WithoutTouchingOtherUsers()
    {
        var time = new FakeTimeProvider(_start);
        await using var daemon = await TestDaemon.StartAsync(Jwts.Settings(("Limits:MaxSubscriptionsPerUser", "3")), time);
        var now = time.GetUtcNow();
        await using var alice1 = await ConnectAsAsync(daemon, Jwts.Valid("alice", now));
        await using var alice2 = await ConnectAsAsync(daemon, Jwts.Valid("alice", now));
        await using var bob = await ConnectAsAsync(daemon, Jwts.Valid("bob", now));

        Assert.That(SecureClient.Rejected(await alice1.SubscribeAckAsync(_keys[0], _keys[1])), Is.Empty);
        var partial = await alice2.SubscribeAckAsync(_keys[2], _keys[3]);
        Assert.That(SecureClient.Keys(partial, "instruments"), Is.EqualTo(new[] { _keys[2] }));
        Assert.That(SecureClient.Rejected(partial), Is.EqualTo(new[] { (_keys[3], "subscription_limit") }));

        // Bob is untouched by Alice's use.
        var bobs = await bob.SubscribeAckAsync(_keys[0], _keys[1], _keys[2]);
        Assert.That(SecureClient.Rejected(bobs), Is.Empty);

        // Alice's slots come back when she unsubscribes, and when a connection of hers closes.
        await alice1.UnsubscribeAsync(_keys[0]);
        await alice1.NextAsync("subscribed");
        Assert.That(SecureClient.Rejected(await alice2.SubscribeAckAsync(_keys[3])), Is.Empty);
        Assert.That(SecureClient.Rejected(await alice2.SubscribeAckAsync(_keys[4])), Is.EqualTo(new[] { (_keys[4], "subscription_limit") }));
        await alice1.DisposeAsync();
        await Eventually.TrueAsync(() => Registry(daemon).Count == 3 - 1);
        Assert.That(SecureClient.Rejected(await alice2.SubscribeAckAsync(_keys[4])), Is.Empty);
    }

    [Test]
    public async Task SubscriptionChanges_OverTheBudget_GetRateLimitedWithRetryAfter_PerUser()
    {
        var time = new FakeTimeProvider(_start);
        await using var daemon = await TestDaemon.StartAsync(Jwts.Settings(("Limits:SubscriptionChangesPerWindow", "3")), time);
        var now = time.GetUtcNow();
        await using var alice = await ConnectAsAsync(daemon, Jwts.Valid("alice", now));
        await using var bob = await ConnectAsAsync(daemon, Jwts.Valid("bob", now));

        await alice.SubscribeAckAsync(_keys[0]);
        time.Advance(TimeSpan.FromSeconds(15));
        await alice.SubscribeAckAsync(_keys[1]);
        await alice.SubscribeAckAsync(_keys[2]);
        await alice.SubscribeAsync(_keys[3]);
        var limited = await alice.NextAsync();
        Assert.That(SecureClient.Type(limited), Is.EqualTo("error"));
        Assert.That(limited.GetProperty("code").GetString(), Is.EqualTo("rate_limited"));
        Assert.That(limited.GetProperty("retry_after_ms").GetInt64(), Is.EqualTo(45_000));

        // Nothing changed, and the answer was the error alone.
        await alice.UnsubscribeAsync(_keys[0]);
        Assert.That((await alice.NextAsync()).GetProperty("code").GetString(), Is.EqualTo("rate_limited"));

        // Bob has his own budget; a new connection of Alice's does not reset hers.
        Assert.That(SecureClient.Rejected(await bob.SubscribeAckAsync(_keys[0])), Is.Empty);
        await using var alice2 = await ConnectAsAsync(daemon, Jwts.Valid("alice", now));
        await alice2.SubscribeAsync(_keys[4]);
        Assert.That((await alice2.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("rate_limited"));

        time.Advance(TimeSpan.FromSeconds(45));
        var ack = await alice.SubscribeAckAsync(_keys[3]);
        Assert.That(SecureClient.Keys(ack, "instruments"), Is.EquivalentTo(_keys[..4]));
    }

    [Test]
    public async Task IdleConnection_IsClosedWith1000_AfterTheTimeout_AndAMessageResetsIt()
    {
        var time = new FakeTimeProvider(_start);
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Limits:IdleTimeoutSeconds"] = "3600" }, time);
        await using var client = await SecureClient.ConnectAsync(daemon.WebSocketUri);
        await client.NextAsync("status");

        time.Advance(TimeSpan.FromMinutes(59));
        await client.SubscribeAckAsync(_keys[0]);
        time.Advance(TimeSpan.FromMinutes(59));
        Assert.That(client.Socket.State, Is.EqualTo(WebSocketState.Open));

        time.Advance(TimeSpan.FromMinutes(2));
        Assert.That(await client.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.NormalClosure));
        Assert.That(client.CloseDescription, Is.EqualTo("idle timeout"));
    }

    [Test]
    public async Task RepeatedBadMessages_CloseWith1008_OnlyPastTheBudgetPerMinute()
    {
        var time = new FakeTimeProvider(_start);
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Limits:MaxBadMessagesPerMinute"] = "5" }, time);
        await using var client = await SecureClient.ConnectAsync(daemon.WebSocketUri);
        await using var neighbour = await SecureClient.ConnectAsync(daemon.WebSocketUri);

        for (var i = 0; i < 5; i++)
        {
            await client.SendAsync("{oops");
            Assert.That((await client.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("invalid_message"));
        }

        // A new minute, a new budget.
        time.Advance(TimeSpan.FromSeconds(61));
        for (var i = 0; i < 5; i++)
        {
            await client.SendAsync("[]");
            await client.NextAsync("error");
        }

        await client.SendAsync("{\"action\":\"sell\",\"instruments\":[]}");
        Assert.That((await client.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("unknown_action"));
        Assert.That(await client.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.PolicyViolation));
        Assert.That(client.CloseDescription, Is.EqualTo("too many bad messages"));

        // The budget is the connection's own.
        Assert.That(SecureClient.Rejected(await neighbour.SubscribeAckAsync(_keys[0])), Is.Empty);
    }

    [Test]
    public async Task MaxConnections_RefusesTheNextHandshakeWith503_UntilOneCloses()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Limits:MaxConnections"] = "2" });
        await using var first = await SecureClient.ConnectAsync(daemon.WebSocketUri);
        await using var second = await SecureClient.ConnectAsync(daemon.WebSocketUri);

        var (refused, status) = await SecureClient.TryConnectAsync(daemon.WebSocketUri);
        Assert.That(refused, Is.Null);
        Assert.That(status, Is.EqualTo(503));

        await first.DisposeAsync();
        await using var third = await PollConnectAsync(daemon.WebSocketUri);
        Assert.That(third.Socket.State, Is.EqualTo(WebSocketState.Open));
    }

    [Test]
    public async Task MaxConnectionsPerUser_RefusesWith429_ForThatUserOnly()
    {
        var time = new FakeTimeProvider(_start);
        await using var daemon = await TestDaemon.StartAsync(Jwts.Settings(("Limits:MaxConnectionsPerUser", "2")), time);
        var now = time.GetUtcNow();
        await using var a1 = await ConnectAsAsync(daemon, Jwts.Valid("alice", now));
        await using var a2 = await ConnectAsAsync(daemon, Jwts.Valid("alice", now));

        var (refused, status) = await SecureClient.TryConnectAsync(daemon.WebSocketUri, Bearer(Jwts.Valid("alice", now)));
        Assert.That(refused, Is.Null);
        Assert.That(status, Is.EqualTo(429));

        await using var bob = await ConnectAsAsync(daemon, Jwts.Valid("bob", now));
        Assert.That(bob.Socket.State, Is.EqualTo(WebSocketState.Open));
    }

    [Test]
    public async Task AnonymousUsers_AreTheirAddress_WhenLoopbackIsNotExempt()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string>
        {
            ["Limits:ExemptLoopback"] = "false",
            ["Limits:MaxConnectionsPerIp"] = "2",
            ["Limits:MaxSubscriptionsPerUser"] = "2",
        });
        await using var first = await SecureClient.ConnectAsync(daemon.WebSocketUri);
        await using var second = await SecureClient.ConnectAsync(daemon.WebSocketUri);
        var (refused, status) = await SecureClient.TryConnectAsync(daemon.WebSocketUri);
        Assert.That(refused, Is.Null);
        Assert.That(status, Is.EqualTo(429));

        await first.SubscribeAckAsync(_keys[0]);
        var ack = await second.SubscribeAckAsync(_keys[1], _keys[2]);
        Assert.That(SecureClient.Rejected(ack), Is.EqualTo(new[] { (_keys[2], "subscription_limit") }));
    }

    [Test]
    public async Task AnonymousLoopbackClients_AreEachTheirOwnUser_ByDefault()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Limits:MaxSubscriptionsPerUser"] = "2", ["Limits:MaxConnectionsPerIp"] = "1" });
        await using var first = await SecureClient.ConnectAsync(daemon.WebSocketUri);
        await using var second = await SecureClient.ConnectAsync(daemon.WebSocketUri);
        Assert.That(SecureClient.Rejected(await first.SubscribeAckAsync(_keys[0], _keys[1])), Is.Empty);
        Assert.That(SecureClient.Rejected(await second.SubscribeAckAsync(_keys[0], _keys[1])), Is.Empty);
    }

    [Test]
    public async Task DeadPeer_ThatStopsAnsweringPings_IsDropped_WhileALiveOneStays()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Limits:KeepAliveSeconds"] = "1" });
        await using var live = await SecureClient.ConnectAsync(daemon.WebSocketUri);
        using var dead = await RawWebSocket.ConnectAsync(daemon.BaseUri);
        await Eventually.TrueAsync(() => Registry(daemon).Count == 2);

        // The raw peer reads (pings arrive) but never answers them: the server must cut it.
        var closed = await dead.ReadUntilClosedAsync(TimeSpan.FromSeconds(15));
        Assert.That(closed.Pings, Is.GreaterThanOrEqualTo(1));
        await Eventually.TrueAsync(() => Registry(daemon).Count == 1);
        Assert.That(SecureClient.Rejected(await live.SubscribeAckAsync(_keys[0])), Is.Empty);
        Assert.That(live.Socket.State, Is.EqualTo(WebSocketState.Open));
    }

    [Test]
    public async Task OversizeMessage_Closes1009_AndBinaryFrame_Closes1003_AtTheDefaults()
    {
        await using var daemon = await TestDaemon.StartAsync();
        await using var big = await SecureClient.ConnectAsync(daemon.WebSocketUri);
        var justRight = "{\"action\":\"subscribe\",\"instruments\":[],\"pad\":\"" + new string('x', 16 * 1024 - 50) + "\"}";
        Assert.That(Encoding.UTF8.GetByteCount(justRight), Is.LessThanOrEqualTo(16 * 1024));
        await big.SendAsync(justRight);
        await big.NextAsync("subscribed");
        await big.SendAsync(justRight + new string(' ', 60));
        Assert.That((await big.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("message_too_large"));
        Assert.That(await big.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.MessageTooBig));

        await using var binary = await SecureClient.ConnectAsync(daemon.WebSocketUri);
        await binary.Socket.SendAsync(new byte[] { 1, 2, 3 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        Assert.That(await binary.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.InvalidMessageType));
    }

    private static SessionRegistry Registry(TestDaemon daemon) => daemon.Services.GetRequiredService<SessionRegistry>();

    private static Action<ClientWebSocketOptions> Bearer(string token) => o => o.SetRequestHeader("Authorization", "Bearer " + token);

    private static Task<SecureClient> ConnectAsAsync(TestDaemon daemon, string token) => SecureClient.ConnectAsync(daemon.WebSocketUri, Bearer(token));

    private static async Task<SecureClient> PollConnectAsync(Uri uri)
    {
        using var timeout = new CancellationTokenSource(TestClient.Timeout);
        while (true)
        {
            var (client, _) = await SecureClient.TryConnectAsync(uri);
            if (client is not null)
            {
                return client;
            }

            await Task.Delay(10, timeout.Token);
        }
    }
}
