using System.Diagnostics;

namespace PriceDaemon.Tests.Support;

/// <summary>
/// Waiting for background work without sleeping for it: poll a condition until it holds, and fail the test
/// with a description of what never happened when the timeout passes.
/// </summary>
internal static class Eventually
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    public static Task TrueAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        TrueAsync(condition, () => what, timeout);

    /// <param name="describe">Called only on failure, so it can show the state that was waited on.</param>
    public static async Task TrueAsync(Func<bool> condition, Func<string>? describe = null, TimeSpan? timeout = null)
    {
        await ValueAsync<object>(() => Task.FromResult(condition() ? new object() : null), describe ?? (() => "a condition"), timeout: timeout);
    }

    /// <summary>Calls <paramref name="probe"/> until it returns a value.</summary>
    /// <param name="detail">Extra text for a failure, e.g. the daemon's output.</param>
    public static Task<T> ValueAsync<T>(Func<Task<T?>> probe, string what, Func<string>? detail = null)
        where T : class => ValueAsync(probe, () => what, detail);

    private static async Task<T> ValueAsync<T>(Func<Task<T?>> probe, Func<string> what, Func<string>? detail = null, TimeSpan? timeout = null)
        where T : class
    {
        var limit = timeout ?? Timeout;
        var elapsed = Stopwatch.StartNew();
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            if (elapsed.Elapsed > limit)
            {
                Assert.Fail($"timed out after {limit.TotalSeconds} s waiting for {what()}{Environment.NewLine}{detail?.Invoke()}");
            }

            await Task.Delay(10);
        }
    }
}
