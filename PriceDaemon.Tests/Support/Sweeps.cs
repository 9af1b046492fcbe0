using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Sockets;

namespace PriceDaemon.Tests.Support;

internal static class Sweeps
{
    /// <summary>
    /// One second of the daemon's clock, and the session sweep it makes due, over. Advance alone does not say the sweep
    /// ran: the fake clock runs a due timer on the first thread that reads it, and Advance returns at once while another
    /// thread (the throttle stage, a send pass) is doing so; that thread runs the sweep, later.
    /// </summary>
    public static async Task AdvanceToSweepAsync(this FakeTimeProvider time, SessionRegistry registry)
    {
        time.Advance(TimeSpan.FromSeconds(1));
        var now = time.GetTimestamp();
        await Eventually.TrueAsync(() => registry.SweptAt >= now, () => $"the sweep due at {now} (the last ended at {registry.SweptAt})");
    }
}
