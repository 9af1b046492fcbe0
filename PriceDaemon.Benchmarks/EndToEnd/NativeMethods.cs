using System.Runtime.InteropServices;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>The few libc calls the harness needs on Linux.</summary>
internal static partial class NativeMethods
{
    public const int SigTerm = 15;

    private const int RlimitNoFile = 7;
    private const int ScClkTck = 2;

    /// <summary>
    /// Raises this process's open-file limit (soft and, as root, hard) to at least <paramref name="wanted"/>.
    /// Child processes inherit it, so the daemon can accept as many sockets as the harness opens.
    /// Returns the soft limit in force afterwards.
    /// </summary>
    public static ulong RaiseOpenFileLimit(ulong wanted)
    {
        if (GetRLimit(RlimitNoFile, out var current) != 0 || current.Current >= wanted)
        {
            return current.Current;
        }

        var raised = new RLimit { Current = wanted, Maximum = Math.Max(wanted, current.Maximum) };
        if (SetRLimit(RlimitNoFile, raised) != 0)
        {
            // Not root: the hard limit stays, and the soft one can still go up to it.
            raised = new RLimit { Current = current.Maximum, Maximum = current.Maximum };
            SetRLimit(RlimitNoFile, raised);
        }

        return GetRLimit(RlimitNoFile, out current) == 0 ? current.Current : 0;
    }

    /// <summary>Clock ticks per second of the CPU times in /proc/PID/stat.</summary>
    public static long ClockTicksPerSecond() => Math.Max(1, SysConf(ScClkTck));

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRLimit(int resource, in RLimit limit);

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long SysConf(int name);

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }
}
