using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Push;
using PriceDaemon.Tests.Security;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Push;

/// <summary>Announcements over real sockets: to every socket open and every one that opens until they expire (on the daemon's clock).</summary>
[TestFixture]
public sealed class AnnouncementTests
{
    // Anonymous sockets get announcements too; the idle timeout is off so that moving the clock closes nothing.
    private static Dictionary<string, string> Settings() => new()
    {
        ["Push:PublisherKey"] = Publisher.Key,
        ["Limits:IdleTimeoutSeconds"] = "0",
    };

    [Test]
    public async Task Announcement_ReachesOpenAndLaterSockets_UntilItExpires()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var daemon = await TestDaemon.StartAsync(Settings(), time);
        using var http = daemon.Http();
        await using var early = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await early.NextAsync("status");

        var expiresAt = time.GetUtcNow().AddMinutes(10);
        var (status, body) = await Publisher.AnnounceAsync(http, "maint-1", "warning", "Trading halts at 15:30 for maintenance", expiresAt);
        Assert.That(status, Is.EqualTo(HttpStatusCode.Accepted));
        Assert.That(body.GetProperty("sockets").GetInt32(), Is.EqualTo(1));

        var frame = await early.NextAsync("announcement");
        Assert.That(frame.GetProperty("id").GetString(), Is.EqualTo("maint-1"));
        Assert.That(frame.GetProperty("level").GetString(), Is.EqualTo("warning"));
        Assert.That(frame.GetProperty("message").GetString(), Is.EqualTo("Trading halts at 15:30 for maintenance"));
        Assert.That(DateTimeOffset.Parse(frame.GetProperty("expires_at").GetString()!, CultureInfo.InvariantCulture), Is.EqualTo(expiresAt).Within(TimeSpan.FromMilliseconds(1)));

        await using (var late = await TestClient.ConnectAsync(daemon.WebSocketUri))
        {
            Assert.That((await late.NextAsync("announcement")).GetProperty("id").GetString(), Is.EqualTo("maint-1"), "a socket that connects before expiry gets it");
        }

        time.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(1));
        await using var after = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await after.NextAsync("status");
        await Publisher.AnnounceAsync(http, "marker", "info", "marker", time.GetUtcNow().AddHours(1));
        Assert.That((await after.NextAsync("announcement")).GetProperty("id").GetString(), Is.EqualTo("marker"), "maint-1 expired before this socket connected");

        // Expired, its id may be used again.
        (status, _) = await Publisher.AnnounceAsync(http, "maint-1", "info", "again", time.GetUtcNow().AddHours(1));
        Assert.That(status, Is.EqualTo(HttpStatusCode.Accepted));
    }

    [Test]
    public async Task DeletedAnnouncement_IsWithdrawnFromOpenSockets_AndNotSentToNewOnes()
    {
        await using var daemon = await TestDaemon.StartAsync(Settings());
        using var http = daemon.Http();
        await using var open = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await open.NextAsync("status");
        await Publisher.AnnounceAsync(http, "maint-1", "critical", "Exchange feed down", DateTimeOffset.UtcNow.AddHours(1));
        await open.NextAsync("announcement");

        var (repeat, repeated) = await Publisher.AnnounceAsync(http, "maint-1", "critical", "Exchange feed down", DateTimeOffset.UtcNow.AddHours(1));
        Assert.That(repeat, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(repeated.GetProperty("duplicate").GetBoolean(), Is.True);

        Assert.That(await DeleteAsync(http, "maint-1"), Is.EqualTo(HttpStatusCode.NoContent));
        var removed = await open.NextAsync("announcement_removed");
        Assert.That(removed.GetProperty("id").GetString(), Is.EqualTo("maint-1"));
        Assert.That(await DeleteAsync(http, "maint-1"), Is.EqualTo(HttpStatusCode.NotFound));

        await using var later = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await later.NextAsync("status");
        await Publisher.AnnounceAsync(http, "marker", "info", "marker", DateTimeOffset.UtcNow.AddHours(1));
        Assert.That((await later.NextAsync("announcement")).GetProperty("id").GetString(), Is.EqualTo("marker"));
    }

    [Test]
    public async Task AnnouncementApi_RefusesUserTokens_AndInvalidBodies()
    {
        await using var daemon = await TestDaemon.StartAsync(Publisher.Settings());
        using var http = daemon.Http();
        var future = DateTimeOffset.UtcNow.AddHours(1);
        var (status, _) = await Publisher.AnnounceAsync(http, "x", "info", "m", future, Jwts.Valid("alice", DateTimeOffset.UtcNow));
        Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized));
        using (var request = new HttpRequestMessage(HttpMethod.Delete, "/api/announcements/x"))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Jwts.Valid("alice", DateTimeOffset.UtcNow));
            using var response = await http.SendAsync(request);
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        }

        (status, var error) = await Publisher.AnnounceAsync(http, "x", "urgent", "m", future);
        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(error.GetProperty("message").GetString(), Does.Contain("'level' must be one of info, warning, critical"));
        (status, error) = await Publisher.AnnounceAsync(http, "x", "info", "m", DateTimeOffset.UtcNow.AddMinutes(-1));
        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(error.GetProperty("message").GetString(), Does.Contain("in the past"));
        (status, error) = await Publisher.PostAnnouncementAsync(http, """{"level":"info","message":"m"}""");
        Assert.That(error.GetProperty("message").GetString(), Does.Contain("missing 'expires_at'"));
    }

    [Test]
    public async Task AnnouncementApi_RefusesMoreThanFiftyInForce_SoThatEverySocketCanTakeThemAtConnect()
    {
        await using var daemon = await TestDaemon.StartAsync(Settings());
        using var http = daemon.Http();
        var future = DateTimeOffset.UtcNow.AddHours(1);
        for (var i = 0; i < 50; i++)
        {
            Assert.That((await Publisher.AnnounceAsync(http, $"a{i}", "info", "m", future)).Status, Is.EqualTo(HttpStatusCode.Accepted));
        }

        var (status, error) = await Publisher.AnnounceAsync(http, "a50", "info", "m", future);
        Assert.That(status, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(error.GetProperty("code").GetString(), Is.EqualTo("too_many_announcements"));
        Assert.That((await Publisher.AnnounceAsync(http, "a0", "info", "m", future)).Status, Is.EqualTo(HttpStatusCode.OK), "a retry of one in force is still a duplicate");

        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        for (var i = 0; i < 50; i++)
        {
            await client.NextAsync("announcement");
        }

        Assert.That(await DeleteAsync(http, "a7"), Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That((await Publisher.AnnounceAsync(http, "a50", "info", "m", future)).Status, Is.EqualTo(HttpStatusCode.Accepted));
    }

    [Test]
    public async Task AnnouncementApi_KeepsTheCap_WhenPublishesRace()
    {
        await using var daemon = await TestDaemon.StartAsync(Settings());
        using var http = daemon.Http();
        var future = DateTimeOffset.UtcNow.AddHours(1);

        // 80 at once over parallel connections: the check and the add are one step, so exactly 50 get in.
        var results = await Task.WhenAll(Enumerable.Range(0, 80).Select(i => Task.Run(() => Publisher.AnnounceAsync(http, $"r{i}", "info", "m", future))));

        Assert.That(results.Count(r => r.Status == HttpStatusCode.Accepted), Is.EqualTo(AnnouncementBoard.MaxActive));
        Assert.That(results.Count(r => r.Status == HttpStatusCode.Conflict), Is.EqualTo(80 - AnnouncementBoard.MaxActive));
    }

    private static Task<HttpStatusCode> DeleteAsync(HttpClient http, string id) => Publisher.DeleteAnnouncementAsync(http, id);
}
