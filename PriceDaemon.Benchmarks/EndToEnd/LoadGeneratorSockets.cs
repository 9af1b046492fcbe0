using System.Diagnostics;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>
/// How the harness's runtime-managed sockets run (the raw TCP ceiling's receivers, HTTP calls; the load
/// clients bypass the runtime's socket engine, see <see cref="EpollReceiver"/>): every completion inline on
/// one epoll thread, instead of a hop to the thread pool from one epoll thread per core. On two cores
/// shared with the server, each hop is a thread wake-up the server competes with. Measured when the load
/// clients still used it: market-open p99 60-64 -> 54-56 ms, campus-peak p99 14.1 -> 8.9 ms. Set before the
/// first socket exists (the runtime reads these once); the servers the harness starts do not inherit them.
/// </summary>
internal static class LoadGeneratorSockets
{
    private static readonly KeyValuePair<string, string>[] Settings =
    [
        new("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1"),
        new("DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT", "1"),
    ];

    private static readonly List<string> SetHere = [];

    public static void Configure()
    {
        foreach (var (name, value) in Settings)
        {
            if (Environment.GetEnvironmentVariable(name) is null)
            {
                Environment.SetEnvironmentVariable(name, value);
                SetHere.Add(name);
            }
        }
    }

    /// <summary>A server under test runs with the runtime's defaults, not the load generator's.</summary>
    public static void KeepFrom(ProcessStartInfo child)
    {
        foreach (var name in SetHere)
        {
            child.Environment.Remove(name);
        }
    }
}
