using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Tests.Pipeline;

/// <summary>The simulated feed's allocation-free delay, on a <see cref="FakeTimeProvider"/>: it waits as long as asked, again and again, and ends at the stop.</summary>
public sealed class ReusableDelayTests
{
    [Test]
    public async Task EachWait_CompletesWhenItsTimeHasPassed_AndNotBefore()
    {
        var time = new FakeTimeProvider();
        using var stop = new CancellationTokenSource();
        using var delay = new ReusableDelay(time, stop.Token);

        foreach (var ms in new[] { 200, 50, 1_000 })
        {
            var wait = delay.WaitAsync(TimeSpan.FromMilliseconds(ms)).AsTask();
            time.Advance(TimeSpan.FromMilliseconds(ms - 1));
            Assert.That(wait.IsCompleted, Is.False, $"a {ms} ms wait ended early");
            time.Advance(TimeSpan.FromMilliseconds(1));
            await wait.WaitAsync(TimeSpan.FromSeconds(10));
        }
    }

    [Test]
    public void TheStop_EndsAPendingWait_AndRefusesTheNext()
    {
        var time = new FakeTimeProvider();
        using var stop = new CancellationTokenSource();
        using var delay = new ReusableDelay(time, stop.Token);

        var wait = delay.WaitAsync(TimeSpan.FromHours(1)).AsTask();
        stop.Cancel();

        Assert.That(async () => await wait.WaitAsync(TimeSpan.FromSeconds(10)), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(() => delay.WaitAsync(TimeSpan.FromSeconds(1)), Throws.InstanceOf<OperationCanceledException>());
    }
}
