using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace PriceDaemon.Tests.Support;

/// <summary>
/// A real <c>nats-server -js</c> (Debian's package) as its own process on a free loopback port with its own store
/// folder. <see cref="StopAsync"/> and <see cref="StartAsync()"/> again keep the port and the folder, so JetStream data
/// (the key-value bucket) survives, as it does when an operator restarts the server.
/// </summary>
internal sealed class NatsServer : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(15);

    private readonly List<string> _output = [];
    private Process? _process;

    private NatsServer(int port, string storeDirectory)
    {
        Port = port;
        StoreDirectory = storeDirectory;
    }

    public int Port { get; }

    public string StoreDirectory { get; }

    public string Url => $"nats://127.0.0.1:{Port}";

    public string Output
    {
        get
        {
            lock (_output)
            {
                return string.Join(Environment.NewLine, _output);
            }
        }
    }

    /// <summary>Starts a server on a free port with a new store folder under <paramref name="folder"/>.</summary>
    public static async Task<NatsServer> StartAsync(string folder)
    {
        var server = new NatsServer(FreePort(), Path.Combine(folder, "nats-store"));
        await server.StartAsync();
        return server;
    }

    /// <summary>(Re)starts the process on the same port and store folder and waits until it accepts connections.</summary>
    public async Task StartAsync()
    {
        if (_process is { HasExited: false })
        {
            throw new InvalidOperationException("nats-server is already running");
        }

        var info = new ProcessStartInfo(Executable(), ["-js", "-a", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-sd", StoreDirectory])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        var deadline = Stopwatch.StartNew();
        while (!await AcceptsAsync())
        {
            if (process.HasExited || deadline.Elapsed > StartTimeout)
            {
                throw new InvalidOperationException($"nats-server did not start on port {Port}:{Environment.NewLine}{Output}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>SIGTERM (Process.Kill sends SIGKILL; a clean stop is what an operator does) and waits for the exit.</summary>
    public async Task StopAsync()
    {
        if (_process is not { } process)
        {
            return;
        }

        if (!process.HasExited)
        {
            DaemonProcess.Signal(process.Id, DaemonProcess.SigTerm);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
                await process.WaitForExitAsync();
            }
        }

        process.Dispose();
        _process = null;
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    private async Task<bool> AcceptsAsync()
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, Port);
            // The server greets every client with INFO once it is ready to serve it.
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            var buffer = new byte[4];
            var read = await client.GetStream().ReadAsync(buffer, timeout.Token);
            return read == 4 && buffer.AsSpan().SequenceEqual("INFO"u8);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Debian installs it in /usr/sbin, which is not on every user's PATH.</summary>
    private static string Executable() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/sbin").Append("/usr/local/bin")
            .Select(folder => Path.Combine(folder, "nats-server"))
            .FirstOrDefault(File.Exists) ?? "nats-server";

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
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
    }
}
