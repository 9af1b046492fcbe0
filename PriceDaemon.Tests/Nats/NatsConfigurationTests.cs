using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Nats;

/// <summary>Bad NATS settings stop the daemon at start-up with one line naming the key (exit code 2), before any connection.</summary>
public sealed class NatsConfigurationTests
{
    [TestCase("Nats:Publish", "--Feed:Source=Nats", "--Nats:Publish=true")]
    [TestCase("Nats:Subjects:0", "--Feed:Source=Nats", "--Nats:Subjects:0=quotes.>")]
    [TestCase("Nats:Url", "--Feed:Source=Nats", "--Nats:Url=http://127.0.0.1:4222")]
    public async Task Daemon_RefusesToStart_WithABadNatsSetting(string key, params string[] args)
    {
        var folder = Directory.CreateTempSubdirectory("pricedaemon-natscfg-").FullName;
        try
        {
            var (exit, output) = await DaemonProcess.RunToExitAsync(folder, ["--urls", "http://127.0.0.1:0", .. args]);
            Assert.That(exit, Is.EqualTo(2), string.Join(Environment.NewLine, output));
            Assert.That(output, Has.Some.Contains("invalid configuration").And.Contains(key));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
