using System.Diagnostics;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>
/// The load generator's socket operations complete on the runtime's epoll threads instead of hopping to the
/// thread pool. Its receive loops parse and count, and never block, so the hop buys nothing; on two cores
/// shared with the server, every hop is a thread wake-up the server's CPU time competes with. Set before the
/// first socket exists (the runtime reads it once); the servers the harness starts do not inherit it.
/// </summary>
internal static class InlineSocketCompletions
{
    private const string Variable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    private static bool _enabledHere;

    public static void Enable()
    {
        if (Environment.GetEnvironmentVariable(Variable) is null)
        {
            Environment.SetEnvironmentVariable(Variable, "1");
            _enabledHere = true;
        }
    }

    /// <summary>A server under test runs with the runtime's defaults, not the load generator's.</summary>
    public static void KeepFrom(ProcessStartInfo child)
    {
        if (_enabledHere)
        {
            child.Environment.Remove(Variable);
        }
    }
}
