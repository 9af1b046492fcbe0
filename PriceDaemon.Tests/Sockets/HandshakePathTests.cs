using System.Globalization;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Sockets;

/// <summary>
/// Which path each price-socket handshake took (<c>pricedaemon_sockets_handshakes_total{path}</c>): the connection
/// middleware's direct one, or Kestrel's endpoint.
/// </summary>
public sealed class HandshakePathTests
{
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

    /// <summary>The handshake counter by path, from the daemon's <c>/metrics</c>.</summary>
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
}
