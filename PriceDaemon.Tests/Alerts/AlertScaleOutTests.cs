using System.Text.RegularExpressions;
using PriceDaemon.Tests.Push;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Alerts;

/// <summary>
/// Alerts in a NATS deployment: one ingest, two edges, each its own process, through a real <c>nats-server -js</c>.
/// Every edge sees every tick, but an alert is stored and evaluated only by the edge that took it: it fires once.
/// </summary>
[NonParallelizable]
public sealed partial class AlertScaleOutTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";

    private string _folder = null!;
    private NatsServer _nats = null!;
    private readonly List<DaemonProcess> _daemons = [];

    [SetUp]
    public async Task SetUp()
    {
        _folder = Directory.CreateTempSubdirectory("pricedaemon-alerts-nats-").FullName;
        _nats = await NatsServer.StartAsync(_folder);
    }

    [TearDown]
    public async Task TearDown()
    {
        foreach (var daemon in _daemons)
        {
            await daemon.DisposeAsync();
        }

        _daemons.Clear();
        await _nats.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public async Task AnAlert_FiresExactlyOnce_WithTwoEdges()
    {
        var edgeA = await StartAsync("edge-a", "--Feed:Source=Nats");
        var edgeB = await StartAsync("edge-b", "--Feed:Source=Nats");
        using var httpA = edgeA.Http();
        using var httpB = edgeB.Http();
        await using var aliceA = await Publisher.ConnectAsync(edgeA.WebSocketUri, "alice");
        await using var aliceB = await Publisher.ConnectAsync(edgeB.WebSocketUri, "alice");
        await aliceA.SubscribeAsync(Reliance);

        // Far above the market: the first RELIANCE tick from the ingest fires it, on every edge that holds it.
        var id = await AlertApi.CreateAsync(httpA, "alice", Reliance, "below", 99_999);
        var ingest = await StartAsync("ingest", "--Feed:Source=Simulated", "--Feed:Simulated:MinIntervalMs=20", "--Feed:Simulated:MaxIntervalMs=40",
            "--Feed:Simulated:Seed=7", "--Nats:Publish=true", "--Nats:KvFlushIntervalMs=100");

        var fired = await aliceA.NextAsync("notification", f => Publisher.Id(f) == $"{id}-1");
        Assert.That(fired.GetProperty("kind").GetString(), Is.EqualTo("price_alert"));

        // Many more ticks reach both edges after the fire; then every socket's notifications so far are read.
        await Eventually.TrueAsync(() => aliceA.PricesOf(Reliance).Count >= 10, "ten more RELIANCE prices on edge A");
        var frames = new List<System.Text.Json.JsonElement>();
        foreach (var alice in new[] { aliceA, aliceB })
        {
            await alice.SendAsync("""{"action":"alert_list"}""");
            frames.AddRange(await alice.CollectUntilAsync(f => f.GetProperty("type").GetString() == "alerts"));
        }

        Assert.That(frames.Count(f => f.GetProperty("type").GetString() == "notification" && Publisher.Id(f) == $"{id}-1"), Is.LessThanOrEqualTo(2),
            "at most once per socket of the user (twice only once the inbox reaches every edge)");
        Assert.That(frames.Count(f => f.GetProperty("type").GetString() == "notification" && Publisher.Id(f) != $"{id}-1"), Is.Zero, "no second fire");
        Assert.That(AlertApi.FireCount(AlertApi.Find(await AlertApi.ListAsync(httpA, "alice"), id)), Is.EqualTo(1));
        var total = 0L;
        foreach (var daemon in new[] { edgeA, edgeB, ingest })
        {
            using var http = daemon.Http();
            total += FiredCounter(await http.GetStringAsync(new Uri("/metrics", UriKind.Relative)));
        }

        Assert.That(total, Is.EqualTo(1), "one fire over the ingest and both edges");
    }

    private static long FiredCounter(string metrics) =>
        FiredLine().Match(metrics) is { Success: true } match ? long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;

    [GeneratedRegex(@"^pricedaemon_alerts_fired_total (\d+)$", RegexOptions.Multiline)]
    private static partial Regex FiredLine();

    private async Task<DaemonProcess> StartAsync(string name, params string[] args)
    {
        var folder = Path.Combine(_folder, name);
        Directory.CreateDirectory(folder);
        string[] common = [$"--Nats:Url={_nats.Url}", "--Nats:ReconnectMinMs=50", "--Nats:ReconnectMaxMs=200", "--Throttle:MinIntervalMs=50"];
        var daemon = await DaemonProcess.StartAsync(folder, Publisher.Args([.. common, .. args]));
        _daemons.Add(daemon);
        return daemon;
    }
}
