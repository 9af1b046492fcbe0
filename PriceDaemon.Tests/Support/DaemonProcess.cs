using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace PriceDaemon.Tests.Support;

/// <summary>
/// The real daemon as its own OS process (the build output beside the tests), for what only a process
/// shows: signals, exit codes, kill -9, two daemons on one file. It listens on 127.0.0.1 port 0 and
/// the bound address is read back from its log.
/// </summary>
internal sealed partial class DaemonProcess : IAsyncDisposable
{
    public const int SigTerm = 15;
    public const int SigKill = 9;

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly List<string> _output = [];
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private DaemonProcess(Process process)
    {
        _process = process;
    }

    public Uri BaseUri { get; private set; } = null!;

    public Uri WebSocketUri => new($"ws://{BaseUri.Authority}/api/ws/prices");

    public int Pid => _process.Id;

    /// <summary>Everything the process wrote to stdout and stderr so far.</summary>
    public IReadOnlyList<string> Output
    {
        get
        {
            lock (_output)
            {
                return [.. _output];
            }
        }
    }

    /// <summary>Starts the daemon and waits until it listens. <paramref name="args"/> come after the defaults, so they win.</summary>
    public static Task<DaemonProcess> StartAsync(string workingDirectory, params string[] args) =>
        StartAsync(new DaemonStartInfo(workingDirectory), args);

    public static async Task<DaemonProcess> StartAsync(DaemonStartInfo start, params string[] args)
    {
        var daemon = Launch(start, ["--urls", "http://127.0.0.1:0", .. args]);
        var finished = await Task.WhenAny(daemon._listening.Task, daemon._process.WaitForExitAsync(), Task.Delay(StartTimeout));
        if (finished != daemon._listening.Task)
        {
            var output = string.Join(Environment.NewLine, daemon.Output);
            await daemon.DisposeAsync();
            throw new InvalidOperationException($"the daemon did not start listening:{Environment.NewLine}{output}");
        }

        daemon.BaseUri = await daemon._listening.Task;
        return daemon;
    }

    /// <summary>Runs the daemon to completion (for runs expected to fail at start-up) and returns its exit code.</summary>
    public static async Task<(int ExitCode, IReadOnlyList<string> Output)> RunToExitAsync(string workingDirectory, params string[] args)
    {
        await using var daemon = Launch(new DaemonStartInfo(workingDirectory), args);
        var exit = await daemon.WaitForExitAsync(StartTimeout);
        return (exit, daemon.Output);
    }

    public void Signal(int signal) => Signal(_process.Id, signal);

    public static void Signal(int pid, int signal)
    {
        if (Kill(pid, signal) != 0)
        {
            throw new InvalidOperationException($"kill({pid}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public HttpClient Http() => new() { BaseAddress = BaseUri };

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private static DaemonProcess Launch(DaemonStartInfo start, string[] args)
    {
        string[] command = [DotnetHost(), Path.Combine(AppContext.BaseDirectory, "PriceDaemon.dll"), .. args];
        if (start.Launcher is { } launcher)
        {
            // The launcher runs the daemon command line as its child (a shell, say).
            command = [.. launcher, .. command];
        }

        var info = new ProcessStartInfo(command[0], command[1..])
        {
            WorkingDirectory = start.WorkingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // The daemon's own environment, not the test runner's: no inherited overrides.
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("PRICEDAEMON_", StringComparison.Ordinal)).ToList())
        {
            info.Environment.Remove(key);
        }

        foreach (var (key, value) in start.Environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var daemon = new DaemonProcess(process);
        process.OutputDataReceived += (_, e) => daemon.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => daemon.OnLine(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return daemon;
    }

    private static string DotnetHost()
    {
        // The tests run under the same dotnet host that will run the daemon.
        var path = Environment.ProcessPath;
        return path is not null && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Add(line);
        }

        if (ListeningLine().Match(line) is { Success: true } match)
        {
            _listening.TrySetResult(new Uri(match.Groups[1].Value));
        }
    }

    [GeneratedRegex(@"Now listening on: (http\S+)")]
    private static partial Regex ListeningLine();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}

/// <summary>Where and how to start a <see cref="DaemonProcess"/>.</summary>
/// <param name="WorkingDirectory">The daemon's working directory (data/ and logs/ land there).</param>
/// <param name="Environment">Extra environment variables.</param>
/// <param name="Launcher">A command that runs the daemon command line as its child, e.g. a shell.</param>
internal sealed record DaemonStartInfo(string WorkingDirectory, IDictionary<string, string>? Environment = null, string[]? Launcher = null);
