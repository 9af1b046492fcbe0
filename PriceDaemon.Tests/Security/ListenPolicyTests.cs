using PriceDaemon.Security;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Security;

/// <summary>Secure by default: an anonymous daemon does not listen beyond loopback unless told to.</summary>
public sealed class ListenPolicyTests
{
    private string _folder = null!;

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("pricedaemon-listen-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    [Test]
    public async Task AnonymousDaemon_RefusesToStart_BeyondLoopback_WithOneLineAndExit2()
    {
        var (exit, output) = await DaemonProcess.RunToExitAsync(_folder, "--urls", "http://0.0.0.0:0");

        Assert.That(exit, Is.EqualTo(2));
        var line = output.Single(l => l.StartsWith("pricedaemon:", StringComparison.Ordinal));
        Assert.That(line, Does.StartWith("pricedaemon: invalid configuration: Auth:Mode: None (anonymous) refuses to listen beyond loopback on http://0.0.0.0:0"));
        Assert.That(line, Does.Contain("Auth:AllowAnonymousRemote=true"));
        Assert.That(output, Has.None.Contains("Now listening"));
    }

    [Test]
    public async Task AnonymousDaemon_Starts_BeyondLoopback_WhenExplicitlyAllowed_AndSaysSo()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder, "--urls", "http://0.0.0.0:0", "--Auth:AllowAnonymousRemote=true");
        Assert.That(daemon.Output, Has.Some.Contains("Auth:Mode=None: anonymous clients from any address"));

        // Reached here over loopback only: the test sends nothing beyond this machine.
        var port = daemon.BaseUri.Port;
        await using var client = await TestClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/api/ws/prices"));
        await client.SubscribeAsync("NSE_EQ|INE002A01018");
        await client.NextAsync("subscribed");
    }

    [Test]
    public async Task DefaultDaemon_LogsItsAuthMode_AtStartUp()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder);
        Assert.That(daemon.Output, Has.Some.Contains("Auth:Mode=None: anonymous clients, loopback only"));
    }

    [Test]
    public async Task JwtDaemon_MayListenBeyondLoopback()
    {
        string[] jwt = [.. Jwts.Settings().Select(static s => $"--{s.Key}={s.Value}")];
        var (exit, output) = await DaemonProcess.RunToExitAsync(_folder, ["--check-config", "--urls", "http://0.0.0.0:0", .. jwt]);
        Assert.That(exit, Is.Zero, string.Join(Environment.NewLine, output));
    }

    [TestCase("http://0.0.0.0:0")]
    [TestCase("http://[::]:8080")]
    [TestCase("http://*:8080")]
    [TestCase("http://+:8080")]
    [TestCase("http://prices.campus.example:8080")]
    [TestCase("http://127.0.0.1:0;http://10.1.2.3:8080")]
    public void AnonymousDaemon_Refused_ForEachNonLoopbackUrl(string urls)
    {
        Assert.That(StartupChecks.Failure(new Dictionary<string, string>(), urls), Does.Contain("refuses to listen beyond loopback"));
    }

    [TestCase("http://127.0.0.1:0")]
    [TestCase("http://localhost:8080")]
    [TestCase("http://[::1]:8080")]
    [TestCase("http://127.0.0.2:8080;http://localhost:9090")]
    public void AnonymousDaemon_Allowed_OnLoopback(string urls)
    {
        Assert.That(StartupChecks.Failure(new Dictionary<string, string>(), urls), Is.Null);
    }

    [Test]
    public void KestrelEndpoints_AreChecked_NotJustUrls()
    {
        var settings = new Dictionary<string, string> { ["Kestrel:Endpoints:Https:Url"] = "https://0.0.0.0:8443" };
        Assert.That(StartupChecks.Failure(settings), Does.Contain("https://0.0.0.0:8443"));
    }

    [Test]
    public void IsLoopback_TreatsUnixSockets_AsLocal()
    {
        Assert.That(ListenPolicy.IsLoopback("http://unix:/run/pricedaemon.sock"), Is.True);
    }
}
