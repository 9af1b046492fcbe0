using System.Text.RegularExpressions;
using PriceDaemon.Tests.Alerts;
using PriceDaemon.Tests.Push;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Nats;

/// <summary>
/// Alerts in a NATS deployment, on this fixture's ingest and edges (each its own process): every edge sees every tick,
/// but users' alerts live in the shared bucket and only the ingest evaluates them, so one fires once and its
/// notification reaches the user's sockets on every edge through the shared inbox.
/// </summary>
public sealed partial class NatsScaleOutTests
{
    [Test]
    public async Task AnAlert_FiresExactlyOnce_WithTwoEdges()
    {
        var edgeA = await StartEdgeAsync("edge-a", Publisher.Args());
        var edgeB = await StartEdgeAsync("edge-b", Publisher.Args());
        using var httpA = edgeA.Http();
        using var httpB = edgeB.Http();
        await using var aliceA = await Publisher.ConnectAsync(edgeA.WebSocketUri, "alice");
        await using var aliceB = await Publisher.ConnectAsync(edgeB.WebSocketUri, "alice");
        await aliceA.SubscribeAsync(Reliance);

        // Far above the market: the first RELIANCE tick the ingest takes fires it; the edges see the same ticks.
        var id = await AlertApi.CreateAsync(httpA, "alice", Reliance, "below", 99_999);
        var ingest = await StartIngestAsync("ingest", Publisher.Args());

        var fired = await aliceA.NextAsync("notification", f => Publisher.Id(f) == $"{id}-1");
        Assert.That(fired.GetProperty("kind").GetString(), Is.EqualTo("price_alert"));
        await aliceB.NextAsync("notification", f => Publisher.Id(f) == $"{id}-1");

        // Many more ticks reach both edges after the fire; then every socket's notifications so far are read.
        await Eventually.TrueAsync(() => aliceA.PricesOf(Reliance).Count >= 10, "ten more RELIANCE prices on edge A");
        var frames = new List<System.Text.Json.JsonElement>();
        foreach (var alice in new[] { aliceA, aliceB })
        {
            await alice.SendAsync("""{"action":"alert_list"}""");
            frames.AddRange(await alice.CollectUntilAsync(f => f.GetProperty("type").GetString() == "alerts"));
        }

        Assert.That(frames.Count(f => f.GetProperty("type").GetString() == "notification"), Is.Zero, "once per socket of the user, on both edges; no second fire");
        var onB = AlertApi.Find(await AlertApi.ListAsync(httpB, "alice"), id);
        Assert.That((AlertApi.State(onB), AlertApi.FireCount(onB)), Is.EqualTo(("fired", 1)), "the other edge lists the state the ingest wrote");
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
}
