using System.Globalization;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>A process's CPU time and resident memory, read from /proc as the kernel accounts them.</summary>
internal static class ProcFs
{
    private static readonly long _clockTicksPerSecond = NativeMethods.ClockTicksPerSecond();

    public static TimeSpan CpuTime(int pid) =>
        TimeSpan.FromSeconds((double)ParseCpuTicks(File.ReadAllText($"/proc/{pid}/stat")) / _clockTicksPerSecond);

    /// <summary>
    /// CPU time of each of the process's threads whose name starts with <paramref name="threadName"/> (Linux truncates
    /// names to 15 characters), by thread id: e.g. the runtime's background JIT thread, <c>.NET Tiered Com</c>, which
    /// ends when idle and is started again, so only per-thread differences make sense.
    /// </summary>
    public static Dictionary<int, TimeSpan> ThreadCpuTimes(int pid, string threadName)
    {
        var times = new Dictionary<int, TimeSpan>();
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(task, "stat"));
            }
            catch (IOException)
            {
                continue; // the thread ended meanwhile
            }

            var open = stat.IndexOf('(', StringComparison.Ordinal);
            if (stat.AsSpan(open + 1).StartsWith(threadName, StringComparison.Ordinal))
            {
                times[int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture)] = TimeSpan.FromSeconds((double)ParseCpuTicks(stat) / _clockTicksPerSecond);
            }
        }

        return times;
    }

    /// <summary>
    /// CPU the named threads used between two readings of <see cref="ThreadCpuTimes"/>: a thread seen only in the later
    /// one counts whole; one that ended in between counts nothing after the earlier reading (never a negative figure).
    /// </summary>
    public static TimeSpan ThreadCpuSince(Dictionary<int, TimeSpan> earlier, Dictionary<int, TimeSpan> later) =>
        later.Aggregate(TimeSpan.Zero, (sum, t) => sum + t.Value - earlier.GetValueOrDefault(t.Key));

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
