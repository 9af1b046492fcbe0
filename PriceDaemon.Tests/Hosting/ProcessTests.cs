using System.Net.WebSockets;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Hosting;

/// <summary>The daemon as its own process: what an operator or a supervisor sees.</summary>
public sealed class ProcessTests
{
    private string _folder = null!;

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("pricedaemon-process-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    [Test]
    public async Task Sigterm_ClosesClientsWith1001_AndExitsZero()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder, "--Feed:Simulated:MinIntervalMs=50", "--Feed:Simulated:MaxIntervalMs=100");
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SubscribeAsync("NSE_EQ|INE002A01018", "NSE_EQ|INE467B01029");
        await client.NextAsync("subscribed");
        await client.NextPriceAsync("NSE_EQ|INE002A01018");

        daemon.Signal(DaemonProcess.SigTerm);

        Assert.That(await client.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.EndpointUnavailable));
        Assert.That(client.CloseDescription, Is.EqualTo("server shutting down"));
        Assert.That(await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15)), Is.Zero);
    }

    [Test]
    public async Task SimulatedFeed_StreamsOnlySubscribedInstruments_WithSnapshotFirst()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder, "--Feed:Simulated:MinIntervalMs=20", "--Feed:Simulated:MaxIntervalMs=40", "--Feed:Simulated:Seed=7");
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        string[] wanted = ["NSE_EQ|INE002A01018", "NSE_EQ|INE467B01029"];
        await client.SubscribeAsync(wanted);
        await client.NextAsync("subscribed");

        // Snapshot, then at least three live updates of each, and nothing for anyone else.
        var frames = await client.CollectUntilAsync(_ => wanted.All(k => client.SeqsOf(k).Count >= 4));
        var keys = frames.Where(f => f.GetProperty("type").GetString() == "price_update")
            .Select(f => f.GetProperty("instrument_key").GetString()).Distinct();
        Assert.That(keys, Is.EquivalentTo(wanted));
        foreach (var key in wanted)
        {
            Assert.That(client.SeqsOf(key), Is.Ordered.Ascending.And.Unique);
            var data = client.PricesOf(key)[^1].GetProperty("data");
            Assert.That(data.GetProperty("source").GetString(), Is.EqualTo("simulated"));
            Assert.That(data.GetProperty("timestamp").GetString(), Does.Match(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"));
        }
    }

    [TestCase("--Throttle:MinIntervalMs=-5", "Throttle:MinIntervalMs")]
    [TestCase("--Throttle:MinIntervalMs=fast", "Throttle:MinIntervalMs")]
    [TestCase("--Feed:Source=Carrier-pigeon", "Feed:Source")]
    [TestCase("--Feed:Simulated:MinIntervalMs=5000", "Feed:Simulated:MinIntervalMs")]
    [TestCase("--Limits:MaxMessageBytes=1", "Limits:MaxMessageBytes")]
    [TestCase("--Transport:SendThreads=-1", "Transport:SendThreads")]
    [TestCase("--Transport:InlineSocketScheduling=sometimes", "Transport:InlineSocketScheduling")]
    [TestCase("--Server:SendThreads=2", "Server:SendThreads: moved to Transport:SendThreads")]
    [TestCase("--Nats:Publish=maybe", "Nats:Publish")]
    [TestCase("--Auth:Mode=2", "Auth:Mode")]
    public async Task BadConfigValue_StopsStartup_WithOneLineNamingTheKey_AndExit2(string argument, string key)
    {
        var line = await ConfigurationErrorAsync(argument);
        Assert.That(line, Does.Contain(key));
    }

    [Test]
    public async Task ValueThatDoesNotConvert_IsNamedWithTheKeyAndTheValue()
    {
        var line = await ConfigurationErrorAsync("--Throttle:MinIntervalMs=abc");
        Assert.That(line, Is.EqualTo("pricedaemon: invalid configuration: Throttle:MinIntervalMs: 'abc' is not a whole number"));
    }

    [Test]
    public async Task ValueWithALineBreak_IsShownEscaped_OnTheOneLine()
    {
        var line = await ConfigurationErrorAsync("--Throttle:MinIntervalMs=25\n0");
        Assert.That(line, Is.EqualTo("pricedaemon: invalid configuration: Throttle:MinIntervalMs: '25\\n0' is not a whole number"));
    }

    [Test]
    public async Task SeveralBadValues_InSeveralSections_AreAllNamedOnTheOneLine()
    {
        var line = await ConfigurationErrorAsync("--Throttle:MinIntervalMs=abc", "--Nats:Publish=maybe", "--Limits:MaxMessageBytes=1");
        Assert.That(line, Does.Contain("Throttle:MinIntervalMs: 'abc' is not a whole number"));
        Assert.That(line, Does.Contain("Nats:Publish: 'maybe' is not true or false"));
        Assert.That(line, Does.Contain("Limits:MaxMessageBytes: must be between"));
    }

    [Test]
    public async Task RecordingTheFileBeingReplayed_StopsStartup_NamingFeedRecordPath()
    {
        var ticks = Path.Combine(_folder, "ticks.bin");
        await File.WriteAllBytesAsync(ticks, []);
        var line = await ConfigurationErrorAsync("--Feed:Source=Replay", $"--Feed:Replay:Path={ticks}", $"--Feed:Record:Path={ticks}");
        Assert.That(line, Does.Contain("Feed:Record:Path: must not be the file being replayed"));
    }

    /// <summary>Starts the daemon with <paramref name="arguments"/>, expects exit code 2, and returns its one configuration line.</summary>
    private async Task<string> ConfigurationErrorAsync(params string[] arguments)
    {
        var (exit, output) = await DaemonProcess.RunToExitAsync(_folder, ["--urls", "http://127.0.0.1:0", .. arguments]);
        Assert.That(exit, Is.EqualTo(2), () => string.Join(Environment.NewLine, output));
        var errors = output.Where(l => l.StartsWith("pricedaemon: invalid configuration", StringComparison.Ordinal)).ToList();
        Assert.That(errors, Has.Count.EqualTo(1), () => string.Join(Environment.NewLine, output));
        return errors[0];
    }
}
