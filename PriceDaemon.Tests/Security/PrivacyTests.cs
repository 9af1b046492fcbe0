using System.Net.WebSockets;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Security;

/// <summary>Users only receive what they subscribed to, and one user's limits never reach another user.</summary>
public sealed class PrivacyTests
{
    [Test]
    public async Task EveryClient_ReceivesOnlyItsSubscribedInstruments_ThroughSubscribesAndUnsubscribes()
    {
        await using var daemon = await TestDaemon.StartAsync();
        var keys = daemon.Instruments.All.Select(i => i.Key).ToArray();
        var clients = new List<(SecureClient Client, HashSet<string> Wanted)>();
        for (var c = 0; c < 5; c++)
        {
            var wanted = keys.Where((_, i) => i % 5 == c).Take(6).ToHashSet();
            var client = await SecureClient.ConnectAsync(daemon.WebSocketUri);
            await client.SubscribeAckAsync([.. wanted]);
            clients.Add((client, wanted));
        }

        await TickAllAsync(daemon, keys, 1000);

        // Each client drops one instrument; after its ack, that instrument must never reach it again.
        var dropped = new Dictionary<SecureClient, string>();
        foreach (var (client, wanted) in clients)
        {
            var key = wanted.First();
            await client.UnsubscribeAsync(key);
            await client.NextAsync("subscribed", f => f.GetProperty("action").GetString() == "unsubscribe");
            dropped[client] = key;
        }

        var marks = clients.ToDictionary(c => c.Client, c => c.Client.Frames.Count);
        await TickAllAsync(daemon, keys, 2000);
        foreach (var (client, wanted) in clients)
        {
            // The barrier: the last tick of an instrument it still holds.
            var last = wanted.Last();
            await client.NextAsync("price_update", f => f.GetProperty("instrument_key").GetString() == last && Price(f) >= 2000 + 9);
            var prices = client.Frames.Where(f => SecureClient.Type(f) == "price_update").ToList();
            Assert.That(prices.Select(Key).Distinct(), Is.SubsetOf(wanted));
            var afterDrop = client.Frames.Skip(marks[client]).Where(f => SecureClient.Type(f) == "price_update").Select(Key);
            Assert.That(afterDrop, Has.None.EqualTo(dropped[client]));
            await client.DisposeAsync();
        }
    }

    [Test]
    public async Task OneUserAtEveryLimit_LeavesAnotherUserUntouched()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 19, 9, 15, 0, TimeSpan.Zero));
        await using var daemon = await TestDaemon.StartAsync(
            Jwts.Settings(
                ("Limits:MaxSubscriptionsPerUser", "2"),
                ("Limits:SubscriptionChangesPerWindow", "3"),
                ("Limits:MaxConnectionsPerUser", "2"),
                ("Limits:MaxBadMessagesPerMinute", "2")),
            time);
        var now = time.GetUtcNow();
        var keys = daemon.Instruments.All.Select(i => i.Key).Take(4).ToArray();
        Action<ClientWebSocketOptions> As(string user) => o => o.SetRequestHeader("Authorization", "Bearer " + Jwts.Valid(user, now));

        // Mallory: all her connections, all her subscriptions, all her changes, and a socket closed for abuse.
        await using var m1 = await SecureClient.ConnectAsync(daemon.WebSocketUri, As("mallory"));
        await using var m2 = await SecureClient.ConnectAsync(daemon.WebSocketUri, As("mallory"));
        Assert.That((await SecureClient.TryConnectAsync(daemon.WebSocketUri, As("mallory"))).Status, Is.EqualTo(429));
        Assert.That(SecureClient.Rejected(await m1.SubscribeAckAsync(keys)), Has.Count.EqualTo(2));
        for (var i = 0; i < 2; i++)
        {
            await m1.SubscribeAsync(keys[3]);
            await m1.NextAsync("subscribed");
        }

        await m1.SubscribeAsync(keys[3]);
        Assert.That((await m1.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("rate_limited"));
        for (var i = 0; i < 3; i++)
        {
            await m2.SendAsync("nonsense");
        }

        Assert.That(await m2.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.PolicyViolation));

        // Bob: his own budget of everything.
        await using var b1 = await SecureClient.ConnectAsync(daemon.WebSocketUri, As("bob"));
        await using var b2 = await SecureClient.ConnectAsync(daemon.WebSocketUri, As("bob"));
        var ack = await b1.SubscribeAckAsync(keys[0], keys[1]);
        Assert.That(SecureClient.Rejected(ack), Is.Empty);
        await b1.SendAsync("nonsense");
        Assert.That((await b1.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("invalid_message"));
        await b2.UnsubscribeAsync(keys[0]);
        await b2.NextAsync("subscribed");
        await daemon.TickAsync(keys[1], 777.25);
        Assert.That(Price(await b1.NextAsync("price_update", f => Key(f) == keys[1])), Is.EqualTo(777.25));
    }

    private static async Task TickAllAsync(TestDaemon daemon, string[] keys, double basePrice)
    {
        for (var round = 0; round < 10; round++)
        {
            foreach (var key in keys)
            {
                await daemon.TickAsync(key, basePrice + round);
            }
        }
    }

    private static string? Key(JsonElement frame) => frame.GetProperty("instrument_key").GetString();

    private static double Price(JsonElement frame) => frame.GetProperty("data").GetProperty("last_price").GetDouble();
}
