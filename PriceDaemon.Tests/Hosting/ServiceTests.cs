using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Hosting;

/// <summary>What running as a service needs: command line, config sources, logs, metrics, systemd readiness.</summary>
public sealed class ServiceTests
{
    private string _folder = null!;

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("pricedaemon-service-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    [Test]
    public async Task Version_PrintsVersion_AndExitsZero()
    {
        var (exit, output) = await DaemonProcess.RunToExitAsync(_folder, "--version");
        Assert.That(exit, Is.Zero);
        Assert.That(output, Has.One.Match(@"^PriceDaemon \d+\.\d+\.\d+"));
    }

    [Test]
    public async Task CheckConfig_ExitsZeroWhenValid_AndTwoWithTheKeyWhenNot()
    {
        var (exit, output) = await DaemonProcess.RunToExitAsync(_folder, "--check-config");
        Assert.That(exit, Is.Zero, string.Join('\n', output));
        Assert.That(Directory.Exists(Path.Combine(_folder, "data")), Is.False, "checking must not create the data file");

        var file = Path.Combine(_folder, "bad.json");
        await File.WriteAllTextAsync(file, "{ \"Limits\": { \"KeepAliveSeconds\": -1 } }");
        (exit, output) = await DaemonProcess.RunToExitAsync(_folder, "--check-config", "--config", file);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Has.One.Contains("Limits:KeepAliveSeconds"));
    }

    [Test]
    public async Task ConfigFile_EnvironmentAndCommandLine_OverrideInThatOrder()
    {
        var file = Path.Combine(_folder, "appsettings.json");
        await File.WriteAllTextAsync(file, "{ \"Feed\": { \"Simulated\": { \"SyntheticInstruments\": 1 } } }");
        var env = new Dictionary<string, string> { ["PRICEDAEMON_Feed__Simulated__SyntheticInstruments"] = "2" };

        await using (var fromFile = await DaemonProcess.StartAsync(new DaemonStartInfo(_folder), "--config", file))
        {
            Assert.That(await InstrumentCountAsync(fromFile), Is.EqualTo(51));
        }

        await using (var fromEnv = await DaemonProcess.StartAsync(new DaemonStartInfo(_folder, env), "--config", file))
        {
            Assert.That(await InstrumentCountAsync(fromEnv), Is.EqualTo(52));
        }

        await using var fromArgs = await DaemonProcess.StartAsync(new DaemonStartInfo(_folder, env), "--config", file, "--Feed:Simulated:SyntheticInstruments=3");
        Assert.That(await InstrumentCountAsync(fromArgs), Is.EqualTo(53));
    }

    [Test]
    public async Task Logs_GoToStdoutAndARollingFile_WithConnectionProperties()
    {
        await using (var daemon = await DaemonProcess.StartAsync(_folder))
        {
            await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
            await client.SubscribeAsync("NSE_EQ|INE002A01018");
            await client.NextAsync("subscribed");
            await client.DisposeAsync();
            daemon.Signal(DaemonProcess.SigTerm);
            Assert.That(await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15)), Is.Zero);
            Assert.That(daemon.Output, Has.Some.Contains("WebSocket connected"));
        }

        var logs = Directory.GetFiles(Path.Combine(_folder, "logs"), "pricedaemon-*.log");
        Assert.That(logs, Has.Length.EqualTo(1));
        var text = await File.ReadAllTextAsync(logs[0]);
        Assert.That(text, Does.Contain("WebSocket connected").And.Contain("\"ConnectionId\":1").And.Contain("\"RemoteAddress\":\"127.0.0.1:"));
        Assert.That(text, Does.Not.Contain("Broadcasting price update"), "per-update logging is Verbose only");
    }

    [Test]
    public async Task Metrics_ExposePipelineCountersInPrometheusText()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder, "--Feed:Simulated:MinIntervalMs=20", "--Feed:Simulated:MaxIntervalMs=40");
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SubscribeAsync("NSE_EQ|INE002A01018");
        await client.NextPriceAsync("NSE_EQ|INE002A01018"); // the snapshot: not counted as latency
        await client.NextPriceAsync("NSE_EQ|INE002A01018");

        using var http = daemon.Http();
        var response = await http.GetAsync("/metrics");
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/plain"));
        // The writer records latency after its write completes, which may be just after the client has the frame.
        var text = await response.Content.ReadAsStringAsync();
        using var timeout = new CancellationTokenSource(TestClient.Timeout);
        while (!text.Contains("pricedaemon_send_latency_seconds_count", StringComparison.Ordinal))
        {
            await Task.Delay(20, timeout.Token);
            text = await http.GetStringAsync("/metrics", timeout.Token);
        }

        Assert.That(text, Does.Contain("# TYPE pricedaemon_updates_emitted_total counter"));
        Assert.That(Value(text, "pricedaemon_updates_emitted_total"), Is.GreaterThan(0));
        Assert.That(Value(text, "pricedaemon_frames_sent_total"), Is.GreaterThan(0));
        Assert.That(Value(text, "pricedaemon_socket_writes_total"), Is.InRange(1, Value(text, "pricedaemon_frames_sent_total")), "a write carries one or more frames");
        Assert.That(Value(text, "pricedaemon_sessions_active"), Is.EqualTo(1));
        Assert.That(Value(text, "pricedaemon_subscriptions"), Is.EqualTo(1));
        Assert.That(Value(text, "pricedaemon_feed_connected"), Is.EqualTo(1));
        Assert.That(Value(text, "pricedaemon_send_latency_seconds_count"), Is.GreaterThan(0));
        Assert.That(text, Does.Contain("pricedaemon_send_latency_seconds_bucket{le=\"+Inf\"}"));

        // Every line is a comment or `name{labels} value`, as Prometheus' text format requires.
        var sample = new System.Text.RegularExpressions.Regex(@"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*=""[^""]*""(,[a-zA-Z_][a-zA-Z0-9_]*=""[^""]*"")*\})? -?[0-9.eE+\-]+(Inf)?$");
        Assert.That(text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#')), Has.All.Matches(sample));

        // The counters move under traffic.
        var before = Value(text, "pricedaemon_frames_sent_total");
        await client.NextPriceAsync("NSE_EQ|INE002A01018");
        await client.NextPriceAsync("NSE_EQ|INE002A01018");
        Assert.That(Value(await http.GetStringAsync("/metrics"), "pricedaemon_frames_sent_total"), Is.GreaterThan(before));
    }

    [Test]
    public async Task LogFile_RollsBySize_AndKeepsTheConfiguredCount()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder,
            "--Serilog:WriteTo:File:Args:fileSizeLimitBytes=4000", "--Serilog:WriteTo:File:Args:retainedFileCountLimit=3");
        for (var i = 0; i < 60; i++)
        {
            await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
            await client.SubscribeAsync("NSE_EQ|INE002A01018");
            await client.NextAsync("subscribed");
        }

        var logs = Path.Combine(_folder, "logs");
        Assert.That(Directory.GetFiles(logs, "pricedaemon-*.log"), Has.Length.EqualTo(3), "rolled by size, the oldest deleted");
        // The limit is checked before each event, so a file ends at most one event past it.
        Assert.That(Directory.GetFiles(logs).Select(f => new FileInfo(f).Length), Has.All.LessThan(4000 + 2048));
    }

    [Test]
    public async Task UnderSystemd_NotifiesReady_OnceListening()
    {
        // systemd is recognised by the parent process's name, so a shell called "systemd" stands in for it,
        // and the notify socket is ours.
        var launcher = Path.Combine(_folder, "systemd");
        File.CreateSymbolicLink(launcher, "/bin/bash");
        var socketPath = Path.Combine(_folder, "notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(socketPath));
        var received = ReceiveNotificationsAsync(notify);

        var start = new DaemonStartInfo(_folder, new Dictionary<string, string> { ["NOTIFY_SOCKET"] = socketPath }, [launcher, "-c", "\"$@\"; exit $?", "systemd"]);
        await using var daemon = await DaemonProcess.StartAsync(start);

        Assert.That(await received.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)), Does.Contain("READY=1"));
        using var http = daemon.Http();
        Assert.That((await http.GetAsync("/health/ready")).IsSuccessStatusCode, Is.True);

        // SIGTERM to the daemon (the shell's child): STOPPING=1, then a clean exit that the shell passes on.
        var child = int.Parse((await File.ReadAllTextAsync($"/proc/{daemon.Pid}/task/{daemon.Pid}/children")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], System.Globalization.CultureInfo.InvariantCulture);
        DaemonProcess.Signal(child, DaemonProcess.SigTerm);
        Assert.That(await received.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)), Does.Contain("STOPPING=1"));
        Assert.That(await daemon.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.Zero);
    }

    private static System.Threading.Channels.Channel<string> ReceiveNotificationsAsync(Socket socket)
    {
        var messages = System.Threading.Channels.Channel.CreateUnbounded<string>();
        _ = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            while (true)
            {
                var count = await socket.ReceiveAsync(buffer, SocketFlags.None);
                await messages.Writer.WriteAsync(Encoding.UTF8.GetString(buffer, 0, count));
            }
        });
        return messages;
    }

    private static double Value(string metrics, string name)
    {
        var line = metrics.Split('\n').SingleOrDefault(l => l.StartsWith(name + " ", StringComparison.Ordinal))
            ?? throw new AssertionException($"no sample named {name} in:\n{metrics}");
        return double.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<int> InstrumentCountAsync(DaemonProcess daemon)
    {
        using var http = daemon.Http();
        using var json = JsonDocument.Parse(await http.GetStringAsync("/api/instruments"));
        return json.RootElement.GetArrayLength();
    }
}
