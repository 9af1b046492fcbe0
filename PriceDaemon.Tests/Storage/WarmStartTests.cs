using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using PriceDaemon.Feeds;
using PriceDaemon.Pipeline;
using PriceDaemon.Storage;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Storage;

/// <summary>
/// The real host in this process on a real LiteDB file: what a restart restores, how restored and cached
/// prices are labelled, and what clients see through a feed outage.
/// </summary>
public sealed class WarmStartTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";
    private const string Tcs = "NSE_EQ|INE467B01029";

    private string _folder = null!;
    private Dictionary<string, string> _settings = null!;

    [SetUp]
    public void SetUp()
    {
        _folder = Directory.CreateTempSubdirectory("pricedaemon-warm-").FullName;
        _settings = new Dictionary<string, string>
        {
            ["Storage:Path"] = Path.Combine(_folder, "prices.db"),
            ["Storage:FlushIntervalMs"] = "50",
        };
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    [Test]
    public async Task Restart_ServesStoredPricesAsStale_ThenContinuesSeqInTheSameEpoch()
    {
        string epoch;
        await using (var first = await TestDaemon.StartAsync(_settings))
        {
            first.Services.GetRequiredService<FeedStatus>().Report(FeedState.Connected, "test feed");
            await first.TickAsync(Reliance, 1451.5, 1000, timeMs: 1_768_818_600_123);
            await first.TickAsync(Reliance, 1452.05, 1100, timeMs: 1_768_818_601_456);
            using var http = first.Http();
            var live = await Eventually.ValueAsync(async () => (await StorageHelpers.GetPricesAsync(http)).GetValueOrDefault(Reliance) is { ValueKind: JsonValueKind.Object } d && d.GetProperty("seq").GetInt64() == 2 ? new[] { d } : null, "the second tick in the cache");
            Assert.That(live[0].GetProperty("stale").GetBoolean(), Is.False, "a live price while the feed is connected");
            epoch = first.Services.GetRequiredService<PriceCache>().Epoch;
        }

        await using var second = await TestDaemon.StartAsync(_settings);
        using (var http = second.Http())
        {
            using var body = JsonDocument.Parse(await http.GetStringAsync(new Uri("/api/prices/NSE_EQ%7CINE002A01018", UriKind.Relative)));
            var data = body.RootElement.GetProperty("data");
            Assert.That(data.GetProperty("last_price").GetDouble(), Is.EqualTo(1452.05));
            Assert.That(data.GetProperty("volume").GetInt64(), Is.EqualTo(1100));
            Assert.That(data.GetProperty("timestamp").GetString(), Is.EqualTo("2026-01-19T10:30:01.456Z"), "a stored price keeps its own time");
            Assert.That(data.GetProperty("seq").GetInt64(), Is.EqualTo(2));
            Assert.That(data.GetProperty("source").GetString(), Is.EqualTo("stored"));
            Assert.That(data.GetProperty("stale").GetBoolean(), Is.True);
        }

        await using var client = await TestClient.ConnectAsync(second.WebSocketUri);
        var status = await client.NextAsync("status");
        Assert.That(status.GetProperty("epoch").GetString(), Is.EqualTo(epoch), "a clean stop keeps the epoch, so seq stays comparable");
        await client.SubscribeAsync(Reliance);
        var snapshot = (await client.NextPriceAsync(Reliance)).GetProperty("data");
        Assert.That(snapshot.GetProperty("seq").GetInt64(), Is.EqualTo(2));
        Assert.That(snapshot.GetProperty("source").GetString(), Is.EqualTo("stored"));
        Assert.That(snapshot.GetProperty("stale").GetBoolean(), Is.True);

        second.Services.GetRequiredService<FeedStatus>().Report(FeedState.Connected, "test feed");
        await second.TickAsync(Reliance, 1460, 1200);
        var next = (await client.NextPriceAsync(Reliance, 1460)).GetProperty("data");
        Assert.That(next.GetProperty("seq").GetInt64(), Is.EqualTo(3));
        Assert.That(next.TryGetProperty("stale", out _), Is.False, "a live update carries no stale label");
    }

    [Test]
    public async Task Restart_KeepsEachInstrumentsPreviousClose_ForChangePercent()
    {
        // A previous close no reference price matches: only storage can have supplied it.
        var (store, _) = PriceStore.Open(Path.Combine(_folder, "prices.db"));
        using (store)
        {
            store.Write([new StoredPrice(Tcs, 3300, 10, 1_768_818_600_000_000, 10, 3000, 7, "live")]);
            store.WriteState("feedface", cleanShutdown: true);
        }

        await using var daemon = await TestDaemon.StartAsync(_settings);
        daemon.Services.GetRequiredService<FeedStatus>().Report(FeedState.Connected, "test feed");
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SubscribeAsync(Tcs);
        var restored = (await client.NextPriceAsync(Tcs, 3300)).GetProperty("data");
        Assert.That(restored.GetProperty("change_percent").GetDouble(), Is.EqualTo(10));

        await daemon.TickAsync(Tcs, 3150, 20);
        var next = (await client.NextPriceAsync(Tcs, 3150)).GetProperty("data");
        Assert.That(next.GetProperty("change_percent").GetDouble(), Is.EqualTo(5));
        Assert.That(next.GetProperty("seq").GetInt64(), Is.EqualTo(8));
    }

    [Test]
    public async Task FeedOutage_TellsClients_ServesStaleSnapshots_ThenResumesLive()
    {
        _settings["Feed:Source"] = "Simulated";
        _settings["Feed:Simulated:MinIntervalMs"] = "20";
        _settings["Feed:Simulated:MaxIntervalMs"] = "40";
        _settings["Feed:Simulated:Seed"] = "3";
        _settings["Feed:Simulated:OutageEverySeconds"] = "1";
        _settings["Feed:Simulated:OutageSeconds"] = "3";
        await using var daemon = await TestDaemon.StartAsync(_settings);
        await using var watcher = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await watcher.SubscribeAsync(Reliance);

        // A client that connects at start-up may first see the feed still connecting; the outage comes after.
        await watcher.NextAsync("status", f => f.GetProperty("status").GetString() == "connected");
        var down = await watcher.NextAsync("status", f => f.GetProperty("status").GetString() == "disconnected");
        Assert.That(down.GetProperty("message").GetString(), Is.EqualTo(FeedStatus.DisconnectedMessage));

        // A page that opens during the outage still gets prices at once, honestly labelled.
        await using var late = await TestClient.ConnectAsync(daemon.WebSocketUri);
        Assert.That((await late.NextAsync("status")).GetProperty("status").GetString(), Is.EqualTo("disconnected"));
        await late.SubscribeAsync(Tcs);
        var snapshot = (await late.NextPriceAsync(Tcs)).GetProperty("data");
        Assert.That(snapshot.GetProperty("stale").GetBoolean(), Is.True);
        Assert.That(snapshot.GetProperty("source").GetString(), Is.EqualTo("simulated"));
        using (var http = daemon.Http())
        {
            using var body = JsonDocument.Parse(await http.GetStringAsync(new Uri("/api/prices/NSE_EQ%7CINE467B01029", UriKind.Relative)));
            Assert.That(body.RootElement.GetProperty("data").GetProperty("stale").GetBoolean(), Is.True);
        }

        var up = await watcher.NextAsync("status", f => f.GetProperty("status").GetString() == "connected");
        Assert.That(up.GetProperty("message").GetString(), Does.StartWith(FeedStatus.ConnectedMessage));
        var live = await late.NextPriceAsync(Tcs);
        Assert.That(live.GetProperty("data").TryGetProperty("stale", out _), Is.False);
        Assert.That(live.GetProperty("data").GetProperty("seq").GetInt64(), Is.GreaterThan(snapshot.GetProperty("seq").GetInt64()));
    }
}
