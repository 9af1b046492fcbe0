using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Feeds;
using PriceDaemon.Pipeline;
using PriceDaemon.Sockets;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Sockets;

/// <summary>Fan-out and the per-socket send path under load, with real sockets.</summary>
public sealed class FanOutTests
{
    private static readonly string[] Keys =
    [
        "NSE_EQ|INE002A01018", "NSE_EQ|INE467B01029", "NSE_EQ|INE009A01021", "NSE_EQ|INE040A01034", "NSE_EQ|INE090A01021",
        "NSE_EQ|INE062A01020", "NSE_EQ|INE154A01025", "NSE_EQ|INE397D01024", "NSE_EQ|INE030A01027", "NSE_EQ|INE018A01030",
    ];

    [Test]
    public async Task Update_IsSerializedOnce_AndTheSameBytesReachEverySubscriber()
    {
        await using var daemon = await TestDaemon.StartAsync();
        // The test is the feed, and a connected one: a snapshot racing the live update is then the very same frame.
        daemon.Services.GetRequiredService<FeedStatus>().Report(FeedState.Connected, "test feed");
        var index = daemon.Services.GetRequiredService<SubscriptionIndex>();
        var recorder = new RecordingSubscriber();
        var id = daemon.Id(Keys[0]);
        index.Add(new Subscription(recorder, id));
        index.Add(new Subscription(recorder, id));
        await using var first = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await using var second = await TestClient.ConnectAsync(daemon.WebSocketUri);
        foreach (var client in new[] { first, second })
        {
            await client.SubscribeAsync(Keys[0]);
            await client.NextAsync("subscribed");
        }

        await daemon.TickAsync(Keys[0], 1500.25, 77);
        var a = await first.NextPriceAsync(Keys[0], 1500.25);
        var b = await second.NextPriceAsync(Keys[0], 1500.25);

        var cache = daemon.Services.GetRequiredService<PriceCache>();
        // The frames are pooled: compared and copied inside a read scope, so none is refilled with another price meanwhile
        // (no tick follows here, but a bare read would only be right by that accident).
        byte[] cachedBytes;
        using (var scope = cache.Read())
        {
            var cached = cache.Get(id);
            Assert.That(recorder.Frames, Has.Count.EqualTo(2));
            Assert.That(recorder.Frames[0], Is.SameAs(recorder.Frames[1]), "one PriceFrame instance for all subscribers");
            Assert.That(recorder.Frames[0], Is.SameAs(cached), "the cache holds the same instance");
            cachedBytes = cached!.Utf8.ToArray();
        }

        Assert.That(a.GetRawText(), Is.EqualTo(b.GetRawText()));
        Assert.That(JsonDocument.Parse(cachedBytes).RootElement.GetRawText(), Is.EqualTo(a.GetRawText()), "clients get exactly the cached bytes");
    }

    [Test]
    public async Task SubscribingOneAtATime_AndResubscribing_AnswersEachWithItsSnapshot_AndNothingElse()
    {
        // A session's slot array starts small and grows; freed slots are reused. Every subscribe must still
        // get its cached price, and an instrument dropped from a slot must never reach the client again.
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Limits:SubscriptionChangesPerWindow"] = "20" });
        for (var i = 0; i < Keys.Length; i++)
        {
            await daemon.TickAsync(Keys[i], 100 + i, 1);
        }

        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        for (var i = 0; i < Keys.Length; i++)
        {
            await client.SubscribeAsync(Keys[i]);
            await client.NextPriceAsync(Keys[i], 100 + i);
        }

        await client.UnsubscribeAsync(Keys[2], Keys[7]);
        await client.NextAsync("subscribed", f => f.GetProperty("action").GetString() == "unsubscribe");
        await daemon.TickAsync(Keys[7], 207, 2);
        await client.SubscribeAsync(Keys[2]);
        var again = await client.NextPriceAsync(Keys[2], 102);

        await daemon.TickAsync(Keys[9], 209, 2);
        await client.NextPriceAsync(Keys[9], 209);
        Assert.That(again.GetProperty("data").GetProperty("seq").GetInt64(), Is.EqualTo(1), "the cached price, again, in a reused slot");
        Assert.That(client.PricesOf(Keys[7]).Select(f => f.GetProperty("data").GetProperty("last_price").GetDouble()), Is.EqualTo(new[] { 107.0 }), "nothing after the unsubscribe");
    }

    [Test]
    public async Task SocketThatNeverReads_DoesNotDelayOthers_StaysBounded_AndCatchesUpInOrder()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Limits:SlowConsumerSeconds"] = "600" }, configure: TestDaemon.SmallSendBuffers);
        var keys = Keys[..5];
        await using var stalled = await TestClient.ConnectAsync(daemon.WebSocketUri, startReading: false);
        await stalled.SubscribeAsync(keys);
        await using var healthy = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await healthy.SubscribeAsync(keys);
        await healthy.NextAsync("subscribed");

        var registry = daemon.Services.GetRequiredService<SessionRegistry>();
        var stalledSession = registry.Sessions.OrderBy(s => s.Id).First();
        await Eventually.TrueAsync(() => stalledSession.SubscriptionCount == keys.Length);

        // Pump until the stalled socket's write is stuck (kernel and Kestrel buffers full), checking every
        // round that the healthy client still gets the newest price of each instrument.
        var price = 100.0;
        var stuckRounds = 0;
        for (var round = 0; round < 400 && stuckRounds < 5; round++)
        {
            for (var i = 0; i < 400; i++)
            {
                price += 0.05;
                await daemon.TickAsync(keys[i % keys.Length], Math.Round(price, 2), i);
                if (i % keys.Length == 0)
                {
                    await Task.Yield(); // give the writers a turn, so frames go out instead of all conflating
                }
            }

            // Conflation may reorder instruments relative to each other, so wait on each one's newest price.
            foreach (var key in keys)
            {
                var last = Math.Round(price - (0.05 * (keys.Length - 1 - Array.IndexOf(keys, key))), 2);
                await Eventually.TrueAsync(() => healthy.LastPriceOf(key) == last, () => $"round {round}: {key} stuck at {healthy.LastPriceOf(key)}, expected {last}");
            }

            Assert.That(stalledSession.QueuedCount, Is.LessThanOrEqualTo(keys.Length + 2), "one pending frame per instrument at most");
            stuckRounds = stalledSession.IsStalled(long.MaxValue, 0) ? stuckRounds + 1 : 0;
        }

        Assert.That(stuckRounds, Is.EqualTo(5), "the stalled socket's writes never blocked; buffers were not filled");
        var finalPrices = keys.ToDictionary(k => k, k => healthy.LastPriceOf(k)!.Value);

        stalled.StartReading();
        foreach (var (key, last) in finalPrices)
        {
            await Eventually.TrueAsync(() => stalled.LastPriceOf(key) == last, () => $"{key}: stalled client ended at {stalled.LastPriceOf(key)}, expected {last}");
        }

        foreach (var key in keys)
        {
            Assert.That(stalled.SeqsOf(key), Is.Ordered.Ascending.And.Unique, $"{key}: an older price followed a newer one");
        }
    }

    [Test]
    public async Task SlowConsumer_IsClosed_AfterSlowConsumerSeconds()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Limits:SlowConsumerSeconds"] = "5" }, time, TestDaemon.SmallSendBuffers);
        var key = Keys[0];
        await using var stalled = await TestClient.ConnectAsync(daemon.WebSocketUri, startReading: false);
        await stalled.SubscribeAsync(key);
        var registry = daemon.Services.GetRequiredService<SessionRegistry>();
        var metrics = daemon.Services.GetRequiredService<PipelineMetrics>();
        var session = registry.Sessions.Single();
        await Eventually.TrueAsync(() => session.SubscriptionCount == 1);

        // Stuck for real once a write is still pending at three checks in a row, 50 ms apart.
        var stuckChecks = 0;
        for (var i = 0; i < 2_000_000 && stuckChecks < 3; i++)
        {
            await daemon.TickAsync(key, 100 + (i % 1000), i);
            if (i % 1000 == 0)
            {
                await Task.Delay(50);
                stuckChecks = session.IsStalled(long.MaxValue, 0) ? stuckChecks + 1 : 0;
            }
        }

        Assert.That(stuckChecks, Is.EqualTo(3), "could not fill the socket's buffers");
        // A second at a time, each sweep waited for: ticks still in the pipeline keep the throttle reading the fake
        // clock, and the thread that reads it first runs the sweep, maybe after Advance has returned.
        for (var second = 0; second < 4; second++)
        {
            await time.AdvanceToSweepAsync(registry);
        }

        Assert.That(session.IsClosing, Is.False, "closed before SlowConsumerSeconds");
        for (var second = 0; second < 2; second++)
        {
            await time.AdvanceToSweepAsync(registry);
        }

        Assert.That(session.IsClosing, Is.True, "not closed after SlowConsumerSeconds");
        Assert.That(metrics.SlowConsumersClosed, Is.EqualTo(1));
        Assert.That(metrics.SlowConsumersWarned, Is.EqualTo(1), "warned and downsampled first (Limits:SlowConsumerWarnSeconds 3): a socket that stopped reading is cut all the same");

        // The session is released within its close timeout (fake time too), and counted once.
        await Eventually.TrueAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(1));
            return registry.Count == 0;
        });
        Assert.That(metrics.SlowConsumersClosed, Is.EqualTo(1));
    }

    [TestCase("0", "false", TestName = "LastValues_MatchTheFeed_AfterItGoesQuiet(default send threads)")]
    [TestCase("3", "true", TestName = "LastValues_MatchTheFeed_AfterItGoesQuiet(3 send threads, inline socket scheduling)")]
    public async Task LastValues_MatchTheFeed_AfterItGoesQuiet(string sendThreads, string inline)
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string>
        {
            ["Throttle:MinIntervalMs"] = "20",
            ["Transport:SendThreads"] = sendThreads,
            ["Transport:InlineSocketScheduling"] = inline,
        });
        var clients = new List<TestClient>();
        for (var c = 0; c < 4; c++)
        {
            var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
            // Overlapping subsets: every client has its own mix.
            await client.SubscribeAsync(Keys.Where((_, i) => (i + c) % 4 != 0).ToArray());
            await client.NextAsync("subscribed");
            clients.Add(client);
        }

        var random = new Random(42);
        var last = new Dictionary<string, double>();
        for (var i = 0; i < 20_000; i++)
        {
            var key = Keys[random.Next(Keys.Length)];
            var price = Math.Round(100 + (random.NextDouble() * 50), 2);
            last[key] = price;
            await daemon.TickAsync(key, price, i);
            if (i % 500 == 0)
            {
                await Task.Delay(1); // let windows open and close while ticks keep coming
            }
        }

        for (var c = 0; c < clients.Count; c++)
        {
            foreach (var key in Keys.Where((_, i) => (i + c) % 4 != 0))
            {
                var client = clients[c];
                await Eventually.TrueAsync(() => client.LastPriceOf(key) == last[key], () => $"client {c} {key}: last {client.LastPriceOf(key)}, feed {last[key]}");
                Assert.That(client.SeqsOf(key), Is.Ordered.Ascending.And.Unique);
            }
        }

        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }
    }

    private sealed class RecordingSubscriber : ISubscriber
    {
        public List<PriceFrame> Frames { get; } = [];

        public void Offered(Subscription subscription, StreamFrame frame)
        {
            lock (Frames)
            {
                Frames.Add((PriceFrame)frame);
            }
        }
    }
}
