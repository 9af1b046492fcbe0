using System.Diagnostics;
using System.Text.RegularExpressions;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>
/// A server under test as its own process (<c>dotnet SERVER.dll ARGS</c>) listening on 127.0.0.1 port 0; the
/// bound address is read back from its "Now listening on" line. Its CPU time and RSS come from /proc.
/// </summary>
internal sealed partial class ServerProcess : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(15);

    private readonly Process _process;
    private readonly Queue<string> _lastLines = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ServerProcess(Process process)
    {
        _process = process;
    }

    public int Pid => _process.Id;

    public Uri BaseUri { get; private set; } = null!;

    public TimeSpan CpuTime => ProcFs.CpuTime(Pid);

    /// <summary>CPU of the runtime's background tier-1 JIT thread(s) by thread id: start-up work, not any frame's.</summary>
    public Dictionary<int, TimeSpan> JitThreadCpuTimes => ProcFs.ThreadCpuTimes(Pid, ".NET Tiered Com");

    public long RssBytes => ProcFs.RssBytes(Pid);

    public static async Task<ServerProcess> StartAsync(string dll, string workingDirectory, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        LoadGeneratorSockets.KeepFrom(info);
        DeployedRuntime.ApplyTo(info);
        info.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add("http://127.0.0.1:0");

        var server = new ServerProcess(new Process { StartInfo = info });
        server._process.OutputDataReceived += (_, e) => server.OnLine(e.Data);
        server._process.ErrorDataReceived += (_, e) => server.OnLine(e.Data);
        server._process.Start();
        server._process.BeginOutputReadLine();
        server._process.BeginErrorReadLine();

        var finished = await Task.WhenAny(server._listening.Task, server._process.WaitForExitAsync(), Task.Delay(StartTimeout)).ConfigureAwait(false);
        if (finished != server._listening.Task)
        {
            var output = server.Output();
            await server.DisposeAsync().ConfigureAwait(false);
            throw new InvalidOperationException($"{Path.GetFileName(dll)} did not start listening:{Environment.NewLine}{output}");
        }

        server.BaseUri = await server._listening.Task.ConfigureAwait(false);
        return server;
    }

    /// <summary>The last lines the server wrote, for error messages.</summary>
    public string Output()
    {
        lock (_lastLines)
        {
            return string.Join(Environment.NewLine, _lastLines);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // SIGTERM first so the daemon drains as in production; a server that hangs is killed.
            NativeMethods.Kill(_process.Id, NativeMethods.SigTerm);
            using var timeout = new CancellationTokenSource(StopTimeout);
            try
            {
                await _process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().ConfigureAwait(false);
            }
        }

        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lastLines)
        {
            _lastLines.Enqueue(line);
            if (_lastLines.Count > 50)
            {
                _lastLines.Dequeue();
            }
        }

        if (ListeningLine().Match(line) is { Success: true } match)
        {
            _listening.TrySetResult(new Uri(match.Groups[1].Value));
        }
    }

    [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningLine();
}
