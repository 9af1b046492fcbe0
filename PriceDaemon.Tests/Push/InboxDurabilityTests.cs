using System.Globalization;
using System.Text.RegularExpressions;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Push;

/// <summary>The inbox through the real process: a clean stop loses nothing, a kill -9 at most one flush interval.</summary>
[TestFixture]
public sealed partial class InboxDurabilityTests
{
    private string _folder = null!;

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("pricedaemon-inbox-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    [Test]
    public async Task Inbox_SurvivesARestart_WithEverythingPublishedBeforeTheStop()
    {
        // A flush interval longer than the test: only the stop's final write can have put it in the file.
        var daemon = await DaemonProcess.StartAsync(_folder, Publisher.Args("--Feed:Source=None", "--Push:FlushIntervalMs=60000"));
        await using (daemon)
        {
            using var http = daemon.Http();
            await Publisher.NotifyAsync(http, "alice", "trade-1");
            daemon.Signal(DaemonProcess.SigTerm);
            Assert.That(await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15)), Is.EqualTo(0));
        }

        await using var again = await DaemonProcess.StartAsync(_folder, Publisher.Args("--Feed:Source=None"));
        await using var alice = await Publisher.ConnectAsync(again.WebSocketUri, "alice");
        var replayed = await alice.NextAsync("notification");
        Assert.That(Publisher.Id(replayed), Is.EqualTo("trade-1"));
        Assert.That(Publisher.Replayed(replayed), Is.True);
    }

    [Test]
    public async Task Inbox_SurvivesSigkill_WithWhatTheLastFlushWrote_AckIncluded()
    {
        string[] args = Publisher.Args("--Feed:Source=None", "--Push:FlushIntervalMs=100");
        var daemon = await DaemonProcess.StartAsync(_folder, args);
        await using (daemon)
        {
            using var http = daemon.Http();
            await Publisher.NotifyAsync(http, "alice", "trade-1");
            await Publisher.NotifyAsync(http, "alice", "trade-2");
            await Eventually.ValueAsync(async () => await InboxWritesAsync(http) >= 2 ? new object() : null, "both notifications written to the inbox file");

            await using (var alice = await Publisher.ConnectAsync(daemon.WebSocketUri, "alice"))
            {
                await alice.NextAsync("notification", f => Publisher.Id(f) == "trade-2");
                var written = await InboxWritesAsync(http);
                await alice.SendAsync("""{"action":"ack","ids":["trade-1"]}""");
                await alice.NextAsync("acked");
                await Eventually.ValueAsync(async () => await InboxWritesAsync(http) > written ? new object() : null, "the ack written to the inbox file");
            }

            daemon.Signal(DaemonProcess.SigKill);
            await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15));
        }

        await using var again = await DaemonProcess.StartAsync(_folder, args);
        using var client = again.Http();
        await using var reconnected = await Publisher.ConnectAsync(again.WebSocketUri, "alice");
        var replayed = await reconnected.NextAsync("notification");
        Assert.That(Publisher.Id(replayed), Is.EqualTo("trade-2"), "trade-1 was acked before the kill");
        Assert.That(Publisher.Replayed(replayed), Is.True);
        await Publisher.NotifyAsync(client, "alice", "marker");
        Assert.That(Publisher.Id(await reconnected.NextAsync("notification")), Is.EqualTo("marker"), "nothing else was replayed");
    }

    [TestCase("--Push:PublisherKey=too-short", "Push:PublisherKey: must be at least 32 bytes")]
    [TestCase("--Push:Topics:0:Name=leaderboard", "Push:Topics: need Push:PublisherKey")]
    [TestCase("--Push:InboxMaxPerUser=500", "Push:InboxMaxPerUser")]
    public async Task BadPushValue_StopsStartup_NamingTheKey_AndExit2(string setting, string message)
    {
        var (exit, output) = await DaemonProcess.RunToExitAsync(_folder, "--urls", "http://127.0.0.1:0", setting);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Has.Exactly(1).StartsWith("pricedaemon: invalid configuration: " + message));
    }

    private static async Task<long> InboxWritesAsync(HttpClient http)
    {
        var text = await http.GetStringAsync("/metrics");
        var match = WritesLine().Match(text);
        return match.Success ? long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    [GeneratedRegex(@"^pricedaemon_inbox_writes_total (\d+)", RegexOptions.Multiline)]
    private static partial Regex WritesLine();
}
