using Microsoft.Extensions.DependencyInjection;
using PriceDaemon.Benchmarks.Push;
using PriceDaemon.Push;
using PriceDaemon.Tests.Push;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Benchmarks;

/// <summary>The <c>push</c> throughput command against a real daemon: it publishes, waits for every socket, and says so.</summary>
[TestFixture]
public sealed class PushCommandTests
{
    [Test]
    public async Task Push_PublishesToEveryUser_AndCompletesWhenEverySocketHasItsOwn()
    {
        await using var daemon = await TestDaemon.StartAsync(Publisher.Settings());
        var output = new StringWriter();
        var exit = await PushCommand.RunAsync(["--url", daemon.BaseUri.ToString(), "--users", "3", "--count", "30", "--concurrency", "2"], output, output);

        Assert.That(exit, Is.Zero, output.ToString());
        Assert.That(output.ToString(), Does.StartWith("users=3 notifications=30 concurrency=2"));
        var inbox = daemon.Services.GetRequiredService<NotificationInbox>();
        Assert.That(Volatile.Read(ref inbox.Delivered), Is.EqualTo(30), "each notification reached its user's one socket");
    }

    [Test]
    public async Task Push_WithoutItsArguments_SaysHowToCallIt()
    {
        var error = new StringWriter();
        Assert.That(await PushCommand.RunAsync(["--users", "3"], TextWriter.Null, error), Is.EqualTo(2));
        Assert.That(error.ToString(), Does.StartWith("usage: push --url"));
    }
}
