using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace PriceDaemon.Tests.Support;

/// <summary>
/// Debian's nginx as a child process, serving the shipped <c>config/nginx-pricedaemon.conf</c> in front of a test
/// daemon. Only what a test must change is substituted: the listen port (a free loopback one) and the upstream
/// servers (the daemon's address). The surrounding main config keeps every path (pid, logs, temp files) in a
/// folder of its own and runs nginx in the foreground as one process, so it works as root or not and ends with
/// the test.
/// </summary>
internal sealed partial class Nginx : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(15);

    private readonly Process _process;
    private readonly string _folder;

    private Nginx(Process process, string folder, int port)
    {
        _process = process;
        _folder = folder;
        BaseUri = new Uri($"http://127.0.0.1:{port}");
        WebSocketUri = new Uri($"ws://127.0.0.1:{port}/api/ws/prices");
    }

    public Uri BaseUri { get; }

    public Uri WebSocketUri { get; }

    /// <summary>The shipped site config, as it is in this checkout.</summary>
    public static string ShippedSite() => File.ReadAllText(Path.Combine(FindRepository(), "config", "nginx-pricedaemon.conf"));

    /// <summary>The shipped site with nginx on 127.0.0.1:<paramref name="port"/> and every upstream server replaced by <paramref name="daemon"/>.</summary>
    public static string Site(string shipped, int port, Uri daemon)
    {
        var listens = ListenLine().Matches(shipped).Count;
        var servers = UpstreamServer().Matches(shipped).Count;
        Assert.That(listens, Is.EqualTo(1), "the shipped config has one listen line");
        Assert.That(servers, Is.Positive, "the shipped config names its edges as server 127.0.0.1:PORT lines");
        var site = ListenLine().Replace(shipped, $"${{indent}}listen 127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)};");
        return UpstreamServer().Replace(site, $"${{head}}{daemon.Authority}");
    }

    /// <summary>A main config around <paramref name="sitePath"/> with everything nginx writes under <paramref name="folder"/>.</summary>
    public static string MainConfig(string folder, string sitePath) => $$"""
        daemon off;
        master_process off;
        pid {{folder}}/nginx.pid;
        error_log {{folder}}/error.log info;
        events { worker_connections 1024; }
        http {
            access_log {{folder}}/access.log;
            client_body_temp_path {{folder}}/client_body;
            proxy_temp_path {{folder}}/proxy;
            fastcgi_temp_path {{folder}}/fastcgi;
            uwsgi_temp_path {{folder}}/uwsgi;
            scgi_temp_path {{folder}}/scgi;
            include {{sitePath}};
        }

        """;

    /// <summary>Writes <paramref name="site"/> and a main config around it under <paramref name="folder"/>; returns the main config's path.</summary>
    public static string WriteConfig(string folder, string site)
    {
        var sitePath = Path.Combine(folder, "pricedaemon.conf");
        File.WriteAllText(sitePath, site);
        var main = Path.Combine(folder, "nginx.conf");
        File.WriteAllText(main, MainConfig(folder, sitePath));
        return main;
    }

    /// <summary><c>nginx -t</c> on a main config: the exit code and what nginx said.</summary>
    public static async Task<(int ExitCode, string Output)> TestConfigAsync(string folder, string mainConfig)
    {
        using var process = Process.Start(Info(folder, mainConfig, "-t"))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(StartTimeout);
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>
    /// Starts nginx with <paramref name="site"/> (made by <see cref="Site"/> for the port given) on a free port and
    /// waits until it accepts connections. A port taken between finding it free and nginx binding it is tried again.
    /// </summary>
    public static async Task<Nginx> StartAsync(Func<int, string> site)
    {
        var folder = Directory.CreateTempSubdirectory("pricedaemon-nginx-").FullName;
        string output = "";
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var port = FreePort();
            var main = WriteConfig(folder, site(port));
            var process = Process.Start(Info(folder, main))!;
            var nginx = new Nginx(process, folder, port);
            var deadline = Stopwatch.StartNew();
            while (!process.HasExited && deadline.Elapsed < StartTimeout)
            {
                if (await AcceptsAsync(port))
                {
                    return nginx;
                }

                await Task.Delay(20);
            }

            output = await nginx.StopAsync();
            if (!output.Contains("Address already in use", StringComparison.Ordinal))
            {
                break;
            }
        }

        Directory.Delete(folder, recursive: true);
        throw new InvalidOperationException($"nginx did not start:{Environment.NewLine}{output}");
    }

    /// <summary>The error log so far (start-up messages and every upstream error).</summary>
    public string ErrorLog => File.Exists(Path.Combine(_folder, "error.log")) ? File.ReadAllText(Path.Combine(_folder, "error.log")) : "";

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Directory.Delete(_folder, recursive: true);
    }

    /// <summary>SIGTERM (nginx's fast shutdown: open sockets are cut), SIGKILL if it lingers; returns its output and error log.</summary>
    private async Task<string> StopAsync()
    {
        if (!_process.HasExited)
        {
            DaemonProcess.Signal(_process.Id, DaemonProcess.SigTerm);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }
        }

        var output = await _process.StandardOutput.ReadToEndAsync() + await _process.StandardError.ReadToEndAsync() + ErrorLog;
        _process.Dispose();
        return output;
    }

    private static ProcessStartInfo Info(string folder, string mainConfig, params string[] extra) =>
        new(Executable(), [.. extra, "-p", folder, "-e", Path.Combine(folder, "error.log"), "-c", mainConfig])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };

    private static async Task<bool> AcceptsAsync(int port)
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>nginx cannot listen on port 0: a port the OS just handed out, and closed again, is free for it.</summary>
    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Debian installs it in /usr/sbin, which is not on every user's PATH.</summary>
    private static string Executable() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/sbin")
            .Select(folder => Path.Combine(folder, "nginx"))
            .FirstOrDefault(File.Exists) ?? "nginx";

    private static string FindRepository()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PriceDaemon.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new DirectoryNotFoundException("PriceDaemon.sln not found above the test directory");
    }

    [GeneratedRegex(@"^(?<indent>[ \t]*)listen 80;", RegexOptions.Multiline)]
    private static partial Regex ListenLine();

    [GeneratedRegex(@"^(?<head>[ \t]*server )127\.0\.0\.1:\d+", RegexOptions.Multiline)]
    private static partial Regex UpstreamServer();
}
