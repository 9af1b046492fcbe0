using System.Globalization;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>A process's CPU time and resident memory, read from /proc as the kernel accounts them.</summary>
internal static class ProcFs
{
    private static readonly long _clockTicksPerSecond = NativeMethods.ClockTicksPerSecond();

    public static TimeSpan CpuTime(int pid) =>
        TimeSpan.FromSeconds((double)ParseCpuTicks(File.ReadAllText($"/proc/{pid}/stat")) / _clockTicksPerSecond);

    public static long RssBytes(int pid) => ParseRssKiB(File.ReadAllText($"/proc/{pid}/status")) * 1024;

    /// <summary>utime + stime (fields 14 and 15) of a /proc/PID/stat line, in clock ticks.</summary>
    public static long ParseCpuTicks(string stat)
    {
        // The command name (field 2) is in parentheses and may itself contain spaces and parentheses.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    /// <summary>The VmRSS line of /proc/PID/status, in KiB.</summary>
    public static long ParseRssKiB(string status)
    {
        foreach (var line in status.Split('\n'))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidDataException("no VmRSS line in /proc/PID/status");
    }
}
