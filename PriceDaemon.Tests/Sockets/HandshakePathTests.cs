using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Sockets;

/// <summary>
/// Which path each price-socket handshake took (<c>pricedaemon_sockets_handshakes_total{path}</c>): the connection
/// middleware's direct one, or Kestrel's endpoint. And that behind the shipped nginx config, where plain requests
/// keep upstream connections alive, every handshake still arrives first on a connection of its own.
/// </summary>
public sealed class HandshakePathTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";

    /// <summary>Plain requests sent at once before the sockets, so nginx has kept-alive upstream connections to reuse.</summary>
    private const int Concurrent = 4;

    private const int Sockets = 16;

    [Test]
    public async Task HandshakeCounter_CountsEachPath_DirectAndAfterAnotherRequestOnTheConnection()
    {
        await using var daemon = await TestDaemon.StartAsync();
        using var first = await ConnectAsync(daemon);
        await first.SendAsync(Encoding.ASCII.GetBytes(Handshake()));
        await AssertAcceptedAsync(first);

        using var second = await ConnectAsync(daemon);
        await second.SendAsync(Encoding.ASCII.GetBytes("GET /price-socket.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        var head = await ReadHeadAsync(second);
        Assert.That(head, Does.StartWith("HTTP/1.1 200 "));
        var length = int.Parse(head.Split("\r\n").Single(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))[15..].Trim(), CultureInfo.InvariantCulture);
        await ReadExactlyAsync(second, length);
        await second.SendAsync(Encoding.ASCII.GetBytes(Handshake()));
        await AssertAcceptedAsync(second);

        using var scrape = daemon.Http();
        var (direct, endpoint) = await HandshakesAsync(scrape);
        Assert.That(direct, Is.EqualTo(1), "the handshake that was its connection's first request");
        Assert.That(endpoint, Is.EqualTo(1), "the handshake after a request on the same connection");
    }

    [Test]
    public async Task ShippedNginxConfig_PassesNginxTest_AsShippedAndAsTheTestsRunIt()
    {
        var shipped = Nginx.ShippedSite();
        Assert.That(UpstreamServers(shipped, "pricedaemon_sockets"), Is.EqualTo(UpstreamServers(shipped, "pricedaemon_edges")).And.Not.Empty,
            "sockets and plain requests go to the same edges");
        var folder = Directory.CreateTempSubdirectory("pricedaemon-nginx-t-").FullName;
        try
        {
            // As shipped (nginx -t binds nothing, so listen 80 and the example edges are fine here).
            var (code, output) = await Nginx.TestConfigAsync(folder, Nginx.WriteConfig(folder, shipped));
            Assert.That(code, Is.Zero, output);

            // As the tests generate it (any port: nginx -t opens no socket).
            var generated = Nginx.WriteConfig(folder, Nginx.Site(shipped, 18080, new Uri("http://127.0.0.1:5000")));
            (code, output) = await Nginx.TestConfigAsync(folder, generated);
            Assert.That(code, Is.Zero, output);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public async Task SocketsThroughTheShippedNginxConfig_AllTakeTheDirectPath_WhilePlainRequestsReuseUpstreamConnections()
    {
        await using var daemon = await TestDaemon.StartAsync();
        using var connections = new KestrelConnections(daemon);
        await using var nginx = await Nginx.StartAsync(port => Nginx.Site(Nginx.ShippedSite(), port, daemon.BaseUri));

        var paths = await StreamThroughAsync(daemon, nginx);
        // One of them is the test's own connection for /metrics.
        var throughNginx = connections.Opened - 1;

        TestContext.Out.WriteLine($"shipped config: {paths.Count(p => p == "direct")} of {Sockets} handshakes direct ({string.Join(' ', paths)}); "
            + $"{Concurrent + Sockets} plain requests and {Sockets} sockets on {throughNginx} upstream connections");
        Assert.That(paths, Is.All.EqualTo("direct"), nginx.ErrorLog);
        Assert.That(throughNginx - Sockets, Is.LessThanOrEqualTo(Concurrent), "plain requests after the first ones reuse kept-alive upstream connections");
    }

    [Test]
    public async Task SocketsThroughAKeepaliveUpstream_GoThroughTheEndpoint_OnConnectionsNginxReused()
    {
        // The layout before the socket location had an upstream of its own: both locations on the keepalive one.
        var shipped = Nginx.ShippedSite();
        Assert.That(shipped, Does.Contain("proxy_pass http://pricedaemon_sockets;"));
        var oneUpstream = shipped.Replace("proxy_pass http://pricedaemon_sockets;", "proxy_pass http://pricedaemon_edges;", StringComparison.Ordinal);
        await using var daemon = await TestDaemon.StartAsync();
        await using var nginx = await Nginx.StartAsync(port => Nginx.Site(oneUpstream, port, daemon.BaseUri));

        var paths = await StreamThroughAsync(daemon, nginx);

        TestContext.Out.WriteLine($"one keepalive upstream: {paths.Count(p => p == "direct")} of {Sockets} handshakes direct ({string.Join(' ', paths)})");
        Assert.That(paths, Has.Some.EqualTo("endpoint"), "a handshake nginx sends on a connection it kept alive reaches Kestrel's endpoint");
    }

    /// <summary>
    /// A few plain requests at once, then sockets, each opened after another plain request, all through nginx;
    /// every socket subscribes and gets a price. Returns the path each handshake took, in order. The counter is
    /// read between each plain request and the next socket: a handshake right behind a response can reach nginx
    /// before it has put that response's upstream connection back in its keepalive pool.
    /// </summary>
    private static async Task<List<string>> StreamThroughAsync(TestDaemon daemon, Nginx nginx)
    {
        using var http = new HttpClient { BaseAddress = nginx.BaseUri, Timeout = TestClient.Timeout };
        using var scrape = daemon.Http();
        await Task.WhenAll(Enumerable.Range(0, Concurrent).Select(_ => http.GetStringAsync("/api/prices")));
        var clients = new List<TestClient>();
        var paths = new List<string>();
        try
        {
            var before = await HandshakesAsync(scrape);
            for (var i = 0; i < Sockets; i++)
            {
                Assert.That((await http.GetAsync("/api/instruments")).IsSuccessStatusCode, nginx.ErrorLog);
                if (i > 0)
                {
                    paths.Add(PathSince(ref before, await HandshakesAsync(scrape)));
                }

                var client = await TestClient.ConnectAsync(nginx.WebSocketUri);
                clients.Add(client);
                await client.SubscribeAsync(Reliance);
                await client.NextAsync("subscribed");
            }

            paths.Add(PathSince(ref before, await HandshakesAsync(scrape)));
            await daemon.TickAsync(Reliance, 1401.5);
            foreach (var client in clients)
            {
                await client.NextPriceAsync(Reliance, 1401.5);
            }
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }

        return paths;
    }

    /// <summary>The <c>server</c> lines of one upstream block of an nginx config.</summary>
    private static List<string> UpstreamServers(string config, string upstream)
    {
        var start = config.IndexOf($"upstream {upstream} {{", StringComparison.Ordinal);
        Assert.That(start, Is.Not.Negative, $"upstream {upstream}");
        var block = config[start..config.IndexOf('}', start)];
        return [.. block.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("server ", StringComparison.Ordinal))];
    }

    /// <summary>The path of the one handshake counted since <paramref name="before"/>, which becomes <paramref name="now"/>.</summary>
    private static string PathSince(ref (long Direct, long Endpoint) before, (long Direct, long Endpoint) now)
    {
        Assert.That(now.Direct - before.Direct + now.Endpoint - before.Endpoint, Is.EqualTo(1), "one handshake per socket");
        var path = now.Direct > before.Direct ? "direct" : "endpoint";
        before = now;
        return path;
    }

    /// <summary>The handshake counter by path, from the daemon's own <c>/metrics</c> (not through nginx, which denies it).</summary>
    private static async Task<(long Direct, long Endpoint)> HandshakesAsync(HttpClient daemon)
    {
        var metrics = await daemon.GetStringAsync("/metrics");
        return (Sample(metrics, "pricedaemon_sockets_handshakes_total{path=\"direct\"}"), Sample(metrics, "pricedaemon_sockets_handshakes_total{path=\"endpoint\"}"));
    }

    private static long Sample(string metrics, string series)
    {
        var line = metrics.Split('\n').SingleOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal))
            ?? throw new AssertionException($"no sample {series} in:\n{metrics}");
        return long.Parse(line[(series.Length + 1)..], CultureInfo.InvariantCulture);
    }

    private static string Handshake() =>
        "GET /api/ws/prices HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + $"Sec-WebSocket-Key: {Convert.ToBase64String(RandomNumberGenerator.GetBytes(16))}\r\nSec-WebSocket-Version: 13\r\n\r\n";

    /// <summary>The 101, then the status frame every session starts with: the session runs, so its handshake is counted.</summary>
    private static async Task AssertAcceptedAsync(Socket socket)
    {
        Assert.That(await ReadHeadAsync(socket), Does.StartWith("HTTP/1.1 101 "));
        var header = await ReadExactlyAsync(socket, 2);
        Assert.That(header[0], Is.EqualTo(0x81), "a final, unmasked text frame");
        var length = header[1] & 0x7F;
        if (length == 126)
        {
            var extended = await ReadExactlyAsync(socket, 2);
            length = (extended[0] << 8) | extended[1];
        }

        Assert.That(Encoding.UTF8.GetString(await ReadExactlyAsync(socket, length)), Does.Contain("\"type\":\"status\""));
    }

    private static async Task<Socket> ConnectAsync(TestDaemon daemon)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(daemon.BaseUri.Host, daemon.BaseUri.Port);
        return socket;
    }

    private static async Task<string> ReadHeadAsync(Socket socket)
    {
        // A byte at a time, so nothing after the head is taken from the socket.
        var head = new StringBuilder();
        var one = new byte[1];
        using var timeout = new CancellationTokenSource(TestClient.Timeout);
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && await socket.ReceiveAsync(one, timeout.Token) == 1)
        {
            head.Append((char)one[0]);
        }

        return head.ToString();
    }

    private static async Task<byte[]> ReadExactlyAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        using var timeout = new CancellationTokenSource(TestClient.Timeout);
        for (var read = 0; read < count;)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), timeout.Token);
            Assert.That(n, Is.Positive, "the connection ended early");
            read += n;
        }

        return buffer;
    }

    /// <summary>Connections the daemon's Kestrel accepted while this listens (its <c>kestrel.active_connections</c> going up).</summary>
    private sealed class KestrelConnections : IDisposable
    {
        private readonly MeterListener _listener = new();
        private long _opened;

        public KestrelConnections(TestDaemon daemon)
        {
            var factory = daemon.Services.GetRequiredService<IMeterFactory>();
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Name == "kestrel.active_connections" && ReferenceEquals(instrument.Meter.Scope, factory))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, _, _) =>
            {
                if (value > 0)
                {
                    Interlocked.Add(ref _opened, value);
                }
            });
            _listener.Start();
        }

        public long Opened => Interlocked.Read(ref _opened);

        public void Dispose() => _listener.Dispose();
    }
}
