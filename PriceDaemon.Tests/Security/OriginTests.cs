using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Security;

/// <summary>Server:AllowedOrigins: cross-site WebSocket hijacking is refused with 403 before the upgrade.</summary>
public sealed class OriginTests
{
    private static async Task<int> StatusWithOriginAsync(TestDaemon daemon, string? origin)
    {
        var (client, status) = await SecureClient.TryConnectAsync(daemon.WebSocketUri, o =>
        {
            if (origin is not null)
            {
                o.SetRequestHeader("Origin", origin);
            }
        });
        if (client is not null)
        {
            await client.DisposeAsync();
        }

        return status;
    }

    [Test]
    public async Task Handshake_FromAnotherSite_Gets403_AndOwnOriginOrNoOriginIsAllowed()
    {
        await using var daemon = await TestDaemon.StartAsync();
        Assert.That(await StatusWithOriginAsync(daemon, "https://evil.example"), Is.EqualTo(403));
        Assert.That(await StatusWithOriginAsync(daemon, "null"), Is.EqualTo(403));
        Assert.That(await StatusWithOriginAsync(daemon, $"http://{daemon.BaseUri.Authority}"), Is.EqualTo(101));
        Assert.That(await StatusWithOriginAsync(daemon, null), Is.EqualTo(101));
    }

    [Test]
    public async Task Handshake_FromListedOrigin_IsAllowed_InAnyCase_AndOthersAreNot()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string>
        {
            ["Server:AllowedOrigins:0"] = "https://board.campus.example",
            ["Server:AllowedOrigins:1"] = "http://localhost:3000",
        });
        Assert.That(await StatusWithOriginAsync(daemon, "https://board.campus.example"), Is.EqualTo(101));
        Assert.That(await StatusWithOriginAsync(daemon, "https://BOARD.campus.example:443"), Is.EqualTo(101));
        Assert.That(await StatusWithOriginAsync(daemon, "http://localhost:3000"), Is.EqualTo(101));
        Assert.That(await StatusWithOriginAsync(daemon, "http://board.campus.example"), Is.EqualTo(403));
        Assert.That(await StatusWithOriginAsync(daemon, "https://board.campus.example.evil.example"), Is.EqualTo(403));
        Assert.That(await StatusWithOriginAsync(daemon, "http://localhost:3001"), Is.EqualTo(403));
    }

    [Test]
    public async Task Handshake_WithoutOrigin_Gets403_WhenMissingOriginIsNotAllowed()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Server:AllowMissingOrigin"] = "false" });
        Assert.That(await StatusWithOriginAsync(daemon, null), Is.EqualTo(403));
        Assert.That(await StatusWithOriginAsync(daemon, $"http://{daemon.BaseUri.Authority}"), Is.EqualTo(101));
    }

    [Test]
    public async Task Wildcard_AllowsAnyOrigin()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Server:AllowedOrigins:0"] = "*" });
        Assert.That(await StatusWithOriginAsync(daemon, "https://anywhere.example"), Is.EqualTo(101));
    }

    [Test]
    public void BadOriginSetting_RefusesToStart_NamingTheKey()
    {
        var failure = StartupChecks.Failure(new Dictionary<string, string> { ["Server:AllowedOrigins:0"] = "board.campus.example/path" });
        Assert.That(failure, Does.Contain("Server:AllowedOrigins: 'board.campus.example/path' is not an origin"));
    }

    [Test]
    public async Task OriginIsChecked_BeforeTheToken()
    {
        await using var daemon = await TestDaemon.StartAsync(Jwts.Settings());
        Assert.That(await StatusWithOriginAsync(daemon, "https://evil.example"), Is.EqualTo(403));
    }
}
