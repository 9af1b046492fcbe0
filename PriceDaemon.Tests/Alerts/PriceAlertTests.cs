using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using PriceDaemon.Alerts;
using PriceDaemon.Feeds.Replay;
using PriceDaemon.Pipeline;
using PriceDaemon.Tests.Push;
using PriceDaemon.Tests.Security;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Alerts;

/// <summary>Price alerts through the real daemon: conditions on replayed ticks, one-shot and repeat, owners, limits, restarts.</summary>
[TestFixture]
public sealed class PriceAlertTests
{
    private const string A = "NSE_EQ|INE002A01018";
    private string _folder = null!;

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("pricedaemon-alerts-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    private Dictionary<string, string> Settings(params (string Key, string Value)[] extra) =>
        Jwts.Settings([("Storage:Path", Path.Combine(_folder, "prices.db")), .. extra]);

    [Test]
    public async Task EachCondition_FiresOnItsTick_OfAReplayedFile_AllInsideOneThrottleWindow()
    {
        double reference;
        var ids = new Dictionary<string, string>();
        await using (var setup = await TestDaemon.StartAsync(Settings()))
        {
            reference = setup.Instruments[setup.Id(A)].ReferencePrice;
            using var http = setup.Http();
            ids["crosses_up"] = await AlertApi.CreateAsync(http, "alice", A, "crosses_up", Round(reference * 1.004));
            ids["above"] = await AlertApi.CreateAsync(http, "alice", A, "above", Round(reference * 1.007), note: "take profit");
            ids["change_pct_above"] = await AlertApi.CreateAsync(http, "alice", A, "change_pct_above", 1.0);
            ids["crosses_down"] = await AlertApi.CreateAsync(http, "alice", A, "crosses_down", Round(reference * 0.996));
            ids["below"] = await AlertApi.CreateAsync(http, "alice", A, "below", Round(reference * 0.993));
            ids["change_pct_below"] = await AlertApi.CreateAsync(http, "alice", A, "change_pct_below", -1.0);
        }

        // One tick per step, milliseconds apart: with a 60 s throttle window every tick after the first is merged away,
        // so no client ever sees the prices that fire the alerts; the alerts see every one.
        double[] factors = [1.0, 1.005, 1.008, 1.012, 0.995, 0.992, 0.988];
        var prices = factors.Select(f => Round(reference * f)).ToArray();
        var file = Path.Combine(_folder, "day.csv");
        await File.WriteAllLinesAsync(file, [TickFile.CsvHeader, .. prices.Select((p, i) =>
            string.Create(CultureInfo.InvariantCulture, $"{A},2026-01-19T03:45:00.{i + 1:000}Z,{p},{1000 + i}"))]);

        await using var daemon = await TestDaemon.StartAsync(Settings(
            ("Feed:Source", "Replay"), ("Feed:Replay:Path", file), ("Feed:Replay:Speed", "0"), ("Throttle:MinIntervalMs", "60000")));
        await using var alice = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        var fired = new Dictionary<string, double>();
        var notifications = new HashSet<string>();
        while (fired.Count < 6)
        {
            var frame = await alice.NextAsync("notification");
            Assert.That(frame.GetProperty("kind").GetString(), Is.EqualTo("price_alert"));
            var data = frame.GetProperty("data");
            var (id, price) = (data.GetProperty("alert_id").GetString()!, data.GetProperty("last_price").GetDouble());
            // The replay runs from the daemon's start, so a fire can land while alice connects: then it comes live and
            // replayed, the same notification twice (README, Platform pushes: "id tells"). A second one must be that
            // notification again, not a second fire (which would carry another id).
            if (!notifications.Add(Publisher.Id(frame)))
            {
                continue;
            }

            fired.Add(id, price);
        }

        var expected = new Dictionary<string, double>
        {
            [ids["crosses_up"]] = prices[1],
            [ids["above"]] = prices[2],
            [ids["change_pct_above"]] = prices[3],
            [ids["crosses_down"]] = prices[4],
            [ids["below"]] = prices[5],
            [ids["change_pct_below"]] = prices[6],
        };
        Assert.That(fired, Is.EquivalentTo(expected));
        // The first tick is emitted, the second opens a window and the five after it merge into it: of the six firing
        // prices only the last could ever reach a client (when the window closes, 60 s later).
        Assert.That(daemon.Services.GetRequiredService<PipelineMetrics>().TicksCoalesced, Is.EqualTo(prices.Length - 2));

        using var http2 = daemon.Http();
        var listed = await AlertApi.ListAsync(http2, "alice");
        foreach (var (condition, id) in ids)
        {
            var alert = AlertApi.Find(listed, id);
            Assert.That(AlertApi.State(alert), Is.EqualTo("fired"), condition);
            Assert.That(alert.GetProperty("fired_price").GetDouble(), Is.EqualTo(expected[id]), condition);
            Assert.That(alert.GetProperty("condition").GetString(), Is.EqualTo(condition));
        }

        Assert.That(AlertApi.Find(listed, ids["above"]).GetProperty("note").GetString(), Is.EqualTo("take profit"));
    }

    [Test]
    public async Task OneShot_FiresOnce_Repeat_RearmsOnlyPastTheHysteresisBand()
    {
        await using var daemon = await TestDaemon.StartAsync(Settings(("Alerts:HysteresisPercent", "1")));
        using var http = daemon.Http();
        await daemon.TickAsync(A, 990);
        await using var alice = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        await alice.SubscribeAsync(A);
        await alice.NextPriceAsync(A, 990); // the book has seen 990 before the alerts exist
        var once = await AlertApi.CreateAsync(http, "alice", A, "above", 1000);
        var repeat = await AlertApi.CreateAsync(http, "alice", A, "above", 1000, repeat: true);

        // 1001 fires both; 995 is back under 1000 but inside the 1 % band (990): no re-arm, so 1002 fires nothing;
        // 989 is past the band: the repeat alert re-arms and fires again at 1003; the one-shot never again.
        foreach (var price in new[] { 1001.0, 995, 1002, 989, 1003 })
        {
            await daemon.TickAsync(A, price);
        }

        var frames = await alice.CollectUntilAsync(f => f.GetProperty("type").GetString() == "notification" && Publisher.Id(f) == $"{repeat}-2");
        await alice.SendAsync("""{"action":"alert_list"}""");
        frames.AddRange(await alice.CollectUntilAsync(f => f.GetProperty("type").GetString() == "alerts"));
        var notifications = frames.Where(f => f.GetProperty("type").GetString() == "notification")
            .Select(f => (Publisher.Id(f), f.GetProperty("data").GetProperty("last_price").GetDouble())).ToList();
        Assert.That(notifications, Is.EquivalentTo(new[] { ($"{once}-1", 1001.0), ($"{repeat}-1", 1001.0), ($"{repeat}-2", 1003.0) }));

        var listed = frames[^1].GetProperty("alerts").EnumerateArray().ToList();
        Assert.That(AlertApi.State(AlertApi.Find(listed, once)), Is.EqualTo("fired"));
        Assert.That(AlertApi.FireCount(AlertApi.Find(listed, once)), Is.EqualTo(1));
        Assert.That(AlertApi.State(AlertApi.Find(listed, repeat)), Is.EqualTo("resetting"), "fired at 1003, waiting for the price to fall past 990");
        Assert.That(AlertApi.FireCount(AlertApi.Find(listed, repeat)), Is.EqualTo(2));
    }

    [Test]
    public async Task CrossesUp_CreatedAboveItsLine_WaitsForTheDipFirst()
    {
        await using var daemon = await TestDaemon.StartAsync(Settings());
        using var http = daemon.Http();
        await using var alice = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        await alice.SubscribeAsync(A);
        await daemon.TickAsync(A, 1010);
        await alice.NextPriceAsync(A, 1010);
        var cross = await AlertApi.CreateAsync(http, "alice", A, "crosses_up", 1000);
        Assert.That(AlertApi.State(AlertApi.Find(await AlertApi.ListAsync(http, "alice"), cross)), Is.EqualTo("resetting"));

        foreach (var price in new[] { 1020.0, 999, 1005 })
        {
            await daemon.TickAsync(A, price);
        }

        var fired = await alice.NextAsync("notification");
        Assert.That(fired.GetProperty("data").GetProperty("last_price").GetDouble(), Is.EqualTo(1005), "1020 was no crossing; 999 then 1005 was");
    }

    [Test]
    public async Task AUsersAlerts_AreInvisibleToOtherUsers()
    {
        await using var daemon = await TestDaemon.StartAsync(Settings());
        using var http = daemon.Http();
        var id = await AlertApi.CreateAsync(http, "alice", A, "above", 5000, note: "alice's");

        Assert.That(await AlertApi.ListAsync(http, "bob"), Is.Empty);
        var (status, body) = await AlertApi.SendAsync(http, HttpMethod.Delete, $"/api/alerts/{id}", "bob");
        Assert.That(status, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(body.GetProperty("code").GetString(), Is.EqualTo("unknown_alert"));

        await using var bob = await Publisher.ConnectAsync(daemon.WebSocketUri, "bob");
        await bob.SendAsync($$"""{"action":"alert_delete","id":"{{id}}"}""");
        Assert.That((await bob.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("unknown_alert"));
        await bob.SendAsync("""{"action":"alert_list"}""");
        Assert.That((await bob.NextAsync("alerts")).GetProperty("alerts").GetArrayLength(), Is.Zero);

        (status, _) = await AlertApi.SendAsync(http, HttpMethod.Get, "/api/alerts", user: null);
        Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized), "no token, no alerts");
        Assert.That(AlertApi.Find(await AlertApi.ListAsync(http, "alice"), id).GetProperty("note").GetString(), Is.EqualTo("alice's"));

        // Alice deletes her own, over the socket.
        await using var alice = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        await alice.SendAsync($$"""{"action":"alert_delete","id":"{{id}}"}""");
        Assert.That((await alice.NextAsync("alert_deleted")).GetProperty("id").GetString(), Is.EqualTo(id));
        Assert.That(await AlertApi.ListAsync(http, "alice"), Is.Empty);
    }

    [Test]
    public async Task PerUserLimit_RefusesTheNextAlert_WithAlertLimit_OnBothPaths()
    {
        await using var daemon = await TestDaemon.StartAsync(Settings(("Alerts:MaxPerUser", "2")));
        using var http = daemon.Http();
        await using var alice = await OneAlertEachWayAsync(daemon, http);

        await alice.SendAsync($$"""{"action":"alert_create","instrument_key":"{{A}}","condition":"below","price":11}""");
        Assert.That((await alice.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("alert_limit"));
        var (status, body) = await AlertApi.SendAsync(http, HttpMethod.Post, "/api/alerts", "alice", $$"""{"instrument_key":"{{A}}","condition":"above","price":1}""");
        Assert.That(status, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(body.GetProperty("code").GetString(), Is.EqualTo("alert_limit"));
        Assert.That(await AlertApi.ListAsync(http, "alice"), Has.Count.EqualTo(2));
        Assert.That(await AlertApi.ListAsync(http, "bob"), Is.Empty, "the limit is per user");
        await AlertApi.CreateAsync(http, "bob", A, "above", 1);
    }

    [Test]
    public async Task CreatesAndDeletes_AreRateLimitedPerUser_AcrossSocketAndHttp_ListingIsNot()
    {
        await using var daemon = await TestDaemon.StartAsync(Settings(("Alerts:ChangesPerMinute", "2")));
        using var http = daemon.Http();
        await using var alice = await OneAlertEachWayAsync(daemon, http);

        await alice.SendAsync($$"""{"action":"alert_create","instrument_key":"{{A}}","condition":"below","price":11}""");
        var refused = await alice.NextAsync("error");
        Assert.That(refused.GetProperty("code").GetString(), Is.EqualTo("rate_limited"));
        Assert.That(refused.GetProperty("retry_after_ms").GetInt64(), Is.GreaterThan(0));
        var (status, body) = await AlertApi.SendAsync(http, HttpMethod.Delete, "/api/alerts/al-none", "alice");
        Assert.That(status, Is.EqualTo(HttpStatusCode.TooManyRequests));
        Assert.That(body.GetProperty("code").GetString(), Is.EqualTo("rate_limited"));
        Assert.That(await AlertApi.ListAsync(http, "alice"), Has.Count.EqualTo(2), "listing is not limited");
        await AlertApi.CreateAsync(http, "bob", A, "above", 1); // another user's budget
    }

    [TestCase("""{"action":"alert_create","instrument_key":"NSE_EQ|INE002A01018","condition":"sideways","price":1}""", "invalid_message")]
    [TestCase("""{"action":"alert_create","instrument_key":"NSE_EQ|INE002A01018","condition":"above"}""", "invalid_message")]
    [TestCase("""{"action":"alert_create","instrument_key":"NSE_EQ|INE002A01018","condition":"change_pct_above","price":1}""", "invalid_message")]
    [TestCase("""{"action":"alert_create","instrument_key":"NSE_EQ|NOPE","condition":"above","price":1}""", "unknown_instrument")]
    [TestCase("""{"action":"alert_create","instrument_key":"NSE_EQ|INE002A01018","condition":"above","price":"1"}""", "invalid_message")]
    [TestCase("""{"action":"alert_delete"}""", "invalid_message")]
    public async Task BadAlertMessage_GetsAnErrorFrame_AndTheSocketStaysOpen(string message, string code)
    {
        await using var daemon = await TestDaemon.StartAsync(Settings());
        await using var alice = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        await alice.SendAsync(message);
        Assert.That((await alice.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo(code));
        await alice.SendAsync("""{"action":"alert_list"}""");
        Assert.That((await alice.NextAsync("alerts")).GetProperty("alerts").GetArrayLength(), Is.Zero);
    }

    [Test]
    public async Task WithoutAuth_AnAlertBelongsToTheConnection_FiresToIt_AndGoesWithIt()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Storage:Path"] = Path.Combine(_folder, "prices.db") });
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SendAsync($$"""{"action":"alert_create","instrument_key":"{{A}}","condition":"above","price":1000,"note":"n"}""");
        var created = (await client.NextAsync("alert_created")).GetProperty("alert");
        Assert.That(created.GetProperty("owner").GetString(), Is.EqualTo("connection"));

        await using var other = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await other.SendAsync("""{"action":"alert_list"}""");
        Assert.That((await other.NextAsync("alerts")).GetProperty("alerts").GetArrayLength(), Is.Zero, "another connection's alerts are not listed");

        await daemon.TickAsync(A, 1001);
        var fired = await client.NextAsync("notification");
        Assert.That(fired.GetProperty("kind").GetString(), Is.EqualTo("price_alert"));
        Assert.That(fired.GetProperty("data").GetProperty("alert_id").GetString(), Is.EqualTo(created.GetProperty("id").GetString()));

        using var http = daemon.Http();
        var (status, body) = await AlertApi.SendAsync(http, HttpMethod.Get, "/api/alerts", user: null);
        Assert.That(status, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(body.GetProperty("code").GetString(), Is.EqualTo("no_users"));

        var book = daemon.Services.GetRequiredService<AlertBook>();
        Assert.That(book.Held, Is.EqualTo(1));
        await client.DisposeAsync();
        await Eventually.TrueAsync(() => Volatile.Read(ref book.Held) == 0, "the connection's alert went with it");
    }

    [Test]
    public async Task AnAlertAlreadyTrueAtStart_FiresOnce_AcrossRestarts()
    {
        string id;
        await using (var first = await TestDaemon.StartAsync(Settings()))
        {
            using var http = first.Http();
            id = await AlertApi.CreateAsync(http, "alice", A, "above", 1000);
        }

        // Down while the price crossed: the first tick after the start is already above, and so are the next ones.
        await using (var second = await TestDaemon.StartAsync(Settings()))
        {
            await second.TickAsync(A, 1010);
            await second.TickAsync(A, 1020);
            using var http = second.Http();
            await Eventually.ValueAsync(async () => AlertApi.FireCount(AlertApi.Find(await AlertApi.ListAsync(http, "alice"), id)) == 1 ? new object() : null, "the alert fired");
            await second.TickAsync(A, 1030);
        }

        await using var third = await TestDaemon.StartAsync(Settings());
        await third.TickAsync(A, 1040);
        await using var alice = await Publisher.ConnectAsync(third.WebSocketUri, "alice");
        var frames = new List<JsonElement> { await alice.NextAsync("notification") };
        await alice.SendAsync("""{"action":"alert_list"}""");
        frames.AddRange(await alice.CollectUntilAsync(f => f.GetProperty("type").GetString() == "alerts"));
        Assert.That(frames.Where(f => f.GetProperty("type").GetString() == "notification").Select(Publisher.Id), Is.EqualTo(new[] { $"{id}-1" }),
            "one notification, kept in the inbox across the restart");
        Assert.That(Publisher.Replayed(frames[0]), Is.True);
        var alert = AlertApi.Find([.. frames[^1].GetProperty("alerts").EnumerateArray()], id);
        Assert.That(AlertApi.FireCount(alert), Is.EqualTo(1));
        Assert.That(alert.GetProperty("fired_price").GetDouble(), Is.EqualTo(1010));
    }

    [Test]
    public async Task SyntheticAlerts_ForLoadRuns_AreArmed_AndFireToNoUser()
    {
        await using var daemon = await TestDaemon.StartAsync(Settings(("Alerts:SyntheticAlerts", "1000")));
        var book = daemon.Services.GetRequiredService<AlertBook>();
        Assert.That(book.Held, Is.EqualTo(1000));
        var reference = daemon.Instruments[daemon.Id(A)].ReferencePrice;
        await daemon.TickAsync(A, reference);
        await daemon.TickAsync(A, reference * 1.5 + 1); // past every upward line of A: those fire (to no one)
        using var http = daemon.Http();
        await Eventually.TrueAsync(() => Volatile.Read(ref book.Fired) > 0, "the upward synthetic alerts of A fired");
        Assert.That(await AlertApi.ListAsync(http, "alice"), Is.Empty, "synthetic alerts belong to no user");
    }

    [Test]
    public async Task Alerts_SurviveSigkill_AndSigterm()
    {
        var args = Publisher.Args("--Feed:Source=None");
        string killed, stopped;
        var daemon = await DaemonProcess.StartAsync(_folder, args);
        await using (daemon)
        {
            using var http = daemon.Http();
            // 201 is sent once the alert is committed: a kill right after loses nothing.
            killed = await AlertApi.CreateAsync(http, "alice", A, "above", 5000, note: "before the kill");
            daemon.Signal(DaemonProcess.SigKill);
            await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15));
        }

        daemon = await DaemonProcess.StartAsync(_folder, args);
        await using (daemon)
        {
            using var http = daemon.Http();
            var listed = await AlertApi.ListAsync(http, "alice");
            Assert.That(AlertApi.Find(listed, killed).GetProperty("note").GetString(), Is.EqualTo("before the kill"));
            Assert.That(AlertApi.State(AlertApi.Find(listed, killed)), Is.EqualTo("armed"));
            stopped = await AlertApi.CreateAsync(http, "alice", A, "below", 10, repeat: true);
            var (status, _) = await AlertApi.SendAsync(http, HttpMethod.Delete, $"/api/alerts/{killed}", "alice");
            Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
            daemon.Signal(DaemonProcess.SigTerm);
            Assert.That(await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15)), Is.EqualTo(0));
        }

        await using var again = await DaemonProcess.StartAsync(_folder, args);
        using var client = again.Http();
        var after = await AlertApi.ListAsync(client, "alice");
        Assert.That(after.Select(a => a.GetProperty("id").GetString()), Is.EqualTo(new[] { stopped }), "the deleted one stays deleted");
        Assert.That(after[0].GetProperty("repeat").GetBoolean(), Is.True);
    }

    /// <summary>Alice's first alert over HTTP, her second on a socket of hers (returned, reading).</summary>
    private static async Task<TestClient> OneAlertEachWayAsync(TestDaemon daemon, HttpClient http)
    {
        await AlertApi.CreateAsync(http, "alice", A, "above", 5000);
        var alice = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice");
        await alice.SendAsync($$"""{"action":"alert_create","instrument_key":"{{A}}","condition":"below","price":10}""");
        Assert.That(AlertApi.State((await alice.NextAsync("alert_created")).GetProperty("alert")), Is.EqualTo("armed"));
        return alice;
    }

    private static double Round(double price) => Math.Round(price, 2);
}
