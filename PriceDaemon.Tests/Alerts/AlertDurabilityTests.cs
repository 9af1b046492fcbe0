using System.Net;
using PriceDaemon.Tests.Push;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Alerts;

/// <summary>Alerts through the real process: an acknowledged alert survives SIGKILL and SIGTERM.</summary>
[TestFixture]
public sealed class AlertDurabilityTests
{
    private const string A = "NSE_EQ|INE002A01018";
    private string _folder = null!;

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("pricedaemon-alerts-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

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
}
