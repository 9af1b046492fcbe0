using System.Text.Json;
using NATS.Client.Core;
using NATS.Net;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Nats;
using PriceDaemon.Tests.Storage;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Nats;

/// <summary>
/// One ingest daemon and edge daemons, each its own OS process, through a real <c>nats-server -js</c> on a free port:
/// convergence, a NATS outage, warm start from the key-value bucket, and subject subsets.
/// </summary>
[NonParallelizable]
public sealed partial class NatsScaleOutTests() : NatsServerTests("pricedaemon-nats-")
{
    private const string Reliance = "NSE_EQ|INE002A01018";
    private const string Tcs = "NSE_EQ|INE467B01029";
    private const string Infosys = "NSE_EQ|INE009A01021";

    [Test]
    public async Task TwoEdges_ConvergeToTheIngestsLastPrices_WhenTheFeedGoesQuiet()
    {
        var edgeA = await StartEdgeAsync("edge-a");
        var edgeB = await StartEdgeAsync("edge-b");
        await using var clientA = await SubscribedClientAsync(edgeA, Reliance, Tcs, Infosys);
        await using var clientB = await SubscribedClientAsync(edgeB, Reliance, Tcs, Infosys);

        // The simulated feed ticks for 2 s, then drops out for 10 s: that quiet is when "the same" is checkable.
        var ingest = await StartIngestAsync("ingest", "--Feed:Simulated:OutageEverySeconds=2", "--Feed:Simulated:OutageSeconds=10");
        using var ingestHttp = ingest.Http();
        using var httpA = edgeA.Http();
        using var httpB = edgeB.Http();
        var (ingestPrices, pricesA, pricesB) = (new Dictionary<string, double>(), new Dictionary<string, double>(), new Dictionary<string, double>());
        // The ingest's own throttle still emits its last pending updates just after the feed goes quiet, so all three
        // are read again each round until they agree while the ingest is in its outage (every price stale), and
        // still agree on the same prices well past a throttle window (50 ms) later.
        var agreed = new Dictionary<string, double>();
        var agreedFor = System.Diagnostics.Stopwatch.StartNew();
        await Eventually.ValueAsync(
            async () =>
            {
                var served = await StorageHelpers.GetPricesAsync(ingestHttp);
                if (served.Count != 50 || !served.Values.All(d => d.GetProperty("stale").GetBoolean()))
                {
                    return null;
                }

                ingestPrices = LastPrices(served);
                pricesA = LastPrices(await StorageHelpers.GetPricesAsync(httpA));
                pricesB = LastPrices(await StorageHelpers.GetPricesAsync(httpB));
                if (!Same(ingestPrices, pricesA) || !Same(ingestPrices, pricesB) || !Same(ingestPrices, agreed))
                {
                    agreed = Same(ingestPrices, pricesA) && Same(ingestPrices, pricesB) ? ingestPrices : [];
                    agreedFor.Restart();
                    return null;
                }

                // On a loaded machine the ingest may start publishing late in its first 2 s of ticks: then the clients have
                // streamed too little yet, and the next quiet (after 2 more s of ticks) is the one to check.
                var streamed = new[] { clientA, clientB }.All(c => new[] { Reliance, Tcs, Infosys }.All(k => c.PricesOf(k).Count > 2));
                return streamed && agreedFor.ElapsedMilliseconds >= 300 ? this : null;
            },
            "both edges' /api/prices to equal the quiet ingest's",
            () => $"edge-a: {Differences(ingestPrices, pricesA)}{Environment.NewLine}edge-b: {Differences(ingestPrices, pricesB)}");

        var expected = ingestPrices;
        foreach (var (name, client) in new[] { ("edge-a", clientA), ("edge-b", clientB) })
        {
            foreach (var key in new[] { Reliance, Tcs, Infosys })
            {
                await Eventually.ValueAsync(
                    () => Task.FromResult(client.LastPriceOf(key) == expected[key] ? this : null),
                    $"{name}'s client to hold the ingest's last price of {key} ({expected[key]})");
                Assert.That(client.PricesOf(key), Has.Count.GreaterThan(2), $"{name} streamed live updates of {key}, not only a snapshot");
            }
        }

        Assert.That(expected[Reliance], Is.Not.EqualTo(1451.50), "the feed moved the price, so equality means the edges followed it");
    }

    [Test]
    public async Task Edge_ReportsDisconnectedAndServesStalePrices_WhileNatsIsDown_ThenResumes()
    {
        var ingest = await StartIngestAsync("ingest");
        var edge = await StartEdgeAsync("edge");
        await using var watcher = await SubscribedClientAsync(edge, Reliance);
        await watcher.NextAsync("price_update", f => IsLive(f, Reliance));
        await using var ingestClient = await SubscribedClientAsync(ingest, Reliance);

        await Server.StopAsync();

        var down = await watcher.NextAsync("status", f => f.GetProperty("status").GetString() == "disconnected");
        Assert.That(down.GetProperty("message").GetString(), Is.EqualTo(FeedStatus.DisconnectedMessage));
        using (var http = edge.Http())
        {
            var prices = await StorageHelpers.GetPricesAsync(http);
            Assert.That(prices, Has.Count.EqualTo(50), "every price the edge had is still served");
            Assert.That(prices.Values.Select(d => d.GetProperty("stale").GetBoolean()), Is.All.True);
        }

        await using (var late = await TestClient.ConnectAsync(edge.WebSocketUri))
        {
            Assert.That((await late.NextAsync("status")).GetProperty("status").GetString(), Is.EqualTo("disconnected"));
            await late.SubscribeAsync(Tcs);
            var snapshot = (await late.NextPriceAsync(Tcs)).GetProperty("data");
            Assert.That(snapshot.GetProperty("stale").GetBoolean(), Is.True);
        }

        // The ingest does not depend on NATS: its own clients keep getting live prices.
        var seen = ingestClient.PricesOf(Reliance).Count;
        await Eventually.ValueAsync(
            () => Task.FromResult(ingestClient.PricesOf(Reliance).Count > seen + 1 ? this : null),
            "live updates on the ingest while NATS is down",
            () => string.Join(Environment.NewLine, ingest.Output));

        // Taken while NATS is down, so no live frame can slip in between: SeqsOf also counts
        // frames received but not yet read, and the resumed update may already be among them.
        var before = watcher.SeqsOf(Reliance)[^1];
        await Server.StartAsync();

        var up = await watcher.NextAsync("status", f => f.GetProperty("status").GetString() == "connected");
        Assert.That(up.GetProperty("message").GetString(), Does.StartWith(FeedStatus.ConnectedMessage));
        var resumed = await watcher.NextAsync("price_update", f => IsLive(f, Reliance));
        Assert.That(resumed.GetProperty("data").GetProperty("seq").GetInt64(), Is.GreaterThan(before));
    }

    [Test]
    public async Task Edge_StartedAfterTheIngestStopped_ServesTheBucketsPricesAsSoonAsItIsReady()
    {
        var ingest = await StartIngestAsync("ingest");
        using (var http = ingest.Http())
        {
            await Eventually.ValueAsync(
                async () => await StorageHelpers.GetPricesAsync(http) is { Count: 50 } p && p.Values.All(d => d.GetProperty("seq").GetInt64() >= 3) ? p : null,
                "every instrument on the ingest to have moved");
        }

        ingest.Signal(DaemonProcess.SigTerm);
        Assert.That(await ingest.WaitForExitAsync(TimeSpan.FromSeconds(15)), Is.Zero);
        var bucket = await ReadBucketAsync();
        Assert.That(bucket, Has.Count.EqualTo(50), $"the ingest's final flush left every instrument in the bucket{Environment.NewLine}{string.Join(Environment.NewLine, ingest.Output)}");

        // A fresh edge: its own storage is empty, so any price it has came from the bucket.
        var edge = await StartEdgeAsync("late-edge");
        using var edgeHttp = edge.Http();
        var prices = await StorageHelpers.GetPricesAsync(edgeHttp);
        Assert.That(LastPrices(prices), Is.EquivalentTo(bucket), "ready means warm: the bucket's prices are there before any tick");
        Assert.That(prices.Values.Select(d => d.GetProperty("stale").GetBoolean()), Is.All.True, "a price from the bucket is a last known price");
        Assert.That(prices.Values.Select(d => d.GetProperty("source").GetString()), Is.All.EqualTo("stored"));
        using var ready = JsonDocument.Parse(await edgeHttp.GetStringAsync(new Uri("/health/ready", UriKind.Relative)));
        Assert.That(ready.RootElement.GetProperty("checks").GetProperty("cache").GetProperty("description").GetString(), Does.Contain("50 of 50"));
    }

    [Test]
    public async Task Edge_WithSubjectFilters_ReceivesOnlyThatSubset()
    {
        var ingest = await StartIngestAsync("ingest");
        var edge = await StartEdgeAsync("subset-edge", "--Nats:Subjects:0=prices.NSE_EQ.INE002A01018", "--Nats:Subjects:1=prices.*.INE467B01029");
        await using var client = await SubscribedClientAsync(edge, Reliance, Tcs, Infosys);
        await Eventually.ValueAsync(
            () => Task.FromResult(client.PricesOf(Reliance).Count >= 3 && client.PricesOf(Tcs).Count >= 3 ? this : null),
            "live updates of both subscribed subjects",
            () => string.Join(Environment.NewLine, edge.Output));
        using (var http = ingest.Http())
        {
            var ingestPrices = await StorageHelpers.GetPricesAsync(http);
            Assert.That(ingestPrices[Infosys].GetProperty("seq").GetInt64(), Is.GreaterThan(3), "Infosys ticked meanwhile");
        }

        Assert.That(client.PricesOf(Infosys), Is.Empty);
        using var edgeHttp = edge.Http();
        Assert.That((await StorageHelpers.GetPricesAsync(edgeHttp)).Keys, Is.EquivalentTo(new[] { Reliance, Tcs }), "neither live ticks nor the bucket brought other instruments");
    }

    [Test]
    public async Task Books_TheIngestsFeedProduces_ReachAnEdgesDepthSubscribers()
    {
        // Feed:Simulated:BooksForAll: the ingest cannot see the edges' clients, so it builds every instrument's book.
        var ingest = await StartIngestAsync("ingest", "--Feed:Simulated:BooksForAll=true");
        var edge = await StartEdgeAsync("edge");
        await using var onEdge = await TestClient.ConnectAsync(edge.WebSocketUri);
        await onEdge.SendAsync($$"""{"action":"subscribe","channel":"depth","instruments":["{{Reliance}}"]}""");
        await onEdge.NextAsync("subscribed");
        var depth = await onEdge.NextAsync("depth");

        await using var onIngest = await TestClient.ConnectAsync(ingest.WebSocketUri);
        await onIngest.SendAsync($$"""{"action":"subscribe","channel":"book","instruments":["{{Reliance}}"]}""");
        var ingestBook = await onIngest.NextAsync("book");

        var data = depth.GetProperty("data");
        Assert.That(data.GetProperty("source").GetString(), Is.EqualTo("simulated"));
        var bids = data.GetProperty("bids").EnumerateArray().Select(l => l[0].GetDouble()).ToList();
        var asks = data.GetProperty("asks").EnumerateArray().Select(l => l[0].GetDouble()).ToList();
        Assert.That(bids, Has.Count.EqualTo(5));
        Assert.That(bids, Is.Ordered.Descending);
        Assert.That(asks, Is.Ordered.Ascending);
        Assert.That(bids[0], Is.LessThan(asks[0]));
        Assert.That(ingestBook.GetProperty("data").GetProperty("bids").GetArrayLength(), Is.GreaterThanOrEqualTo(20));
    }

    private Task<DaemonProcess> StartIngestAsync(string name, params string[] args) => StartDaemonAsync(
        name,
        [
            "--Feed:Source=Simulated", "--Feed:Simulated:MinIntervalMs=20", "--Feed:Simulated:MaxIntervalMs=40", "--Feed:Simulated:Seed=7",
            "--Nats:Publish=true", "--Nats:KvFlushIntervalMs=100", .. args,
        ]);

    private Task<DaemonProcess> StartEdgeAsync(string name, params string[] args) => StartDaemonAsync(name, ["--Feed:Source=Nats", .. args]);

    private async Task<DaemonProcess> StartDaemonAsync(string name, string[] args)
    {
        var folder = Path.Combine(Folder, name);
        Directory.CreateDirectory(folder);
        var daemon = await DaemonProcess.StartAsync(
            folder,
            [
                $"--Nats:Url={Server.Url}", "--Nats:ReconnectMinMs=50", "--Nats:ReconnectMaxMs=200", "--Throttle:MinIntervalMs=50",
                "--Storage:FlushIntervalMs=100", .. args,
            ]);
        Daemons.Add(daemon);
        return daemon;
    }

    private static async Task<TestClient> SubscribedClientAsync(DaemonProcess daemon, params string[] keys)
    {
        var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SubscribeAsync(keys);
        await client.NextAsync("subscribed");
        return client;
    }

    private static bool IsLive(JsonElement frame, string key) =>
        frame.GetProperty("instrument_key").GetString() == key && !frame.GetProperty("data").TryGetProperty("stale", out _);

    private static bool Same(Dictionary<string, double> a, Dictionary<string, double> b) =>
        a.Count == b.Count && a.All(p => b.TryGetValue(p.Key, out var v) && v == p.Value);

    private static string Differences(Dictionary<string, double> expected, Dictionary<string, double> actual) =>
        $"{expected.Count} expected, {actual.Count} served; differing: " + string.Join(", ", expected
            .Where(e => !actual.TryGetValue(e.Key, out var a) || a != e.Value)
            .Select(e => $"{e.Key} {e.Value} vs {(actual.TryGetValue(e.Key, out var a) ? a : null)}"));

    private static Dictionary<string, double> LastPrices(Dictionary<string, JsonElement> prices) =>
        prices.ToDictionary(p => p.Key, p => p.Value.GetProperty("last_price").GetDouble());

    /// <summary>The bucket as an edge would read it: instrument key to last price.</summary>
    private async Task<Dictionary<string, double>> ReadBucketAsync()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = Server.Url });
        var bucket = await connection.CreateKeyValueStoreContext().GetStoreAsync("prices");
        using var csv = new StreamReader(typeof(PriceDaemon.Program).Assembly.GetManifestResourceStream("PriceDaemon.instruments.csv")!);
        var keys = InstrumentRegistry.Load(csv, "instruments.csv", 0).All.Select(i => i.Key);
        var prices = new Dictionary<string, double>();
        foreach (var key in keys)
        {
            var entry = await bucket.TryGetEntryAsync<ReadOnlyMemory<byte>>(NatsSubjects.KvKey(key));
            if (entry.Success)
            {
                Assert.That(TickCodec.TryRead(entry.Value.Value.Span, out var wire), Is.True, $"bucket value of {key}");
                prices[key] = wire.LastPrice;
            }
        }

        return prices;
    }
}
