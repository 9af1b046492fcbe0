using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using PriceDaemon.Sockets;
using PriceDaemon.Tests.Support;
using static PriceDaemon.Sockets.DirectUpgrade;

namespace PriceDaemon.Tests.Sockets;

/// <summary>
/// The connection-level handshake (Sockets/DirectUpgrade.cs): which requests it takes, and that a socket works
/// the same whether it takes the handshake or leaves it to Kestrel.
/// </summary>
public sealed class DirectUpgradeTests
{
    private static readonly string Key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));

    private static string Handshake(string target = "/api/ws/prices", string extra = "") =>
        $"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
        + $"Sec-WebSocket-Key: {Key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n";

    private static Verdict Parse(string text, out UpgradeRequest? request) =>
        UpgradeRequest.TryParse(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(text)), out request, out _);

    [Test]
    public void TakesAPlainHandshake_WithItsQueryAndHeaders()
    {
        Assert.That(Parse(Handshake("/api/ws/prices?token=abc", "Origin: http://a.example\r\nX-Two: 1\r\nx-two: 2\r\n"), out var request), Is.EqualTo(Verdict.Ours));
        Assert.That(request!.Path, Is.EqualTo("/api/ws/prices"));
        Assert.That(request.Query, Is.EqualTo("?token=abc"));
        Assert.That(request.Key, Is.EqualTo(Key));
        Assert.That(request.Headers.Origin.ToString(), Is.EqualTo("http://a.example"));
        Assert.That(request.Headers["X-Two"].ToArray(), Is.EqualTo(new[] { "1", "2" }));
    }

    [Test]
    public void LeavesAHeadWithTooManyHeaderLinesToKestrel()
    {
        var many = string.Concat(Enumerable.Range(0, 101).Select(i => $"X-{i}: {i}\r\n"));
        Assert.That(Parse(Handshake(extra: many), out _), Is.EqualTo(Verdict.NotOurs));
        Assert.That(Parse(Handshake(extra: "a: 1\r\n"), out _), Is.EqualTo(Verdict.Ours));
    }

    [Test]
    public void WaitsForTheRestOfAHeadThatCouldStillBeOne()
    {
        var full = Handshake();
        foreach (var cut in new[] { 1, 10, 20, full.Length - 2 })
        {
            Assert.That(Parse(full[..cut], out _), Is.EqualTo(Verdict.NeedMore), $"first {cut} bytes");
        }
    }

    [TestCase("GET /api/instruments HTTP/1.1\r\nHost: x\r\n\r\n")]
    [TestCase("GET /api/ws/pricesX HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")]
    [TestCase("POST /api/ws/prices HTTP/1.1\r\nHost: x\r\n\r\n")]
    [TestCase("\u0016\u0003\u0001\u0002\u0000\u0001")]
    [TestCase("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")]
    public void LeavesOtherRequestsToKestrel(string head) => Assert.That(Parse(head, out _), Is.EqualTo(Verdict.NotOurs));

    [TestCase("HTTP/1.0", "", "")]
    [TestCase("HTTP/1.1", "Content-Length: 5\r\n", "")]
    [TestCase("HTTP/1.1", "Transfer-Encoding: chunked\r\n", "")]
    [TestCase("HTTP/1.1", "Bad Header : x\r\n", "")]
    [TestCase("HTTP/1.1", " folded\r\n", "")]
    [TestCase("HTTP/1.1", "", "version")]
    [TestCase("HTTP/1.1", "", "key")]
    [TestCase("HTTP/1.1", "", "upgrade")]
    [TestCase("HTTP/1.1", "", "host")]
    [TestCase("HTTP/1.1", "X-Nul: a\u0000b\r\n", "")]
    [TestCase("HTTP/1.1", "X-Latin: caf\u00e9\r\n", "")]
    [TestCase("HTTP/1.1", "Bad(Name): x\r\n", "")]
    [TestCase("HTTP/1.1", "Host: second.example\r\n", "")]
    public void LeavesHandshakesItDoesNotFullyAccept_ToKestrel(string version, string extra, string broken)
    {
        var head = Handshake(extra: extra).Replace("HTTP/1.1", version, StringComparison.Ordinal);
        head = broken switch
        {
            "version" => head.Replace("Version: 13", "Version: 8", StringComparison.Ordinal),
            "key" => head.Replace(Key, "c2hvcnQ=", StringComparison.Ordinal),
            "upgrade" => head.Replace("Upgrade: websocket", "Upgrade: h2c", StringComparison.Ordinal),
            "host" => head.Replace("Host: 127.0.0.1:5000\r\n", "", StringComparison.Ordinal),
            _ => head,
        };
        Assert.That(Parse(head, out _), Is.EqualTo(Verdict.NotOurs));
    }

    [TestCase(true)]
    [TestCase(false)]
    public async Task ASession_GetsItsPrices_WritingToTheSocketOrThroughKestrelsPipe(bool direct)
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Transport:DirectSocketSends"] = direct ? "true" : "false" });
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SubscribeAsync("NSE_EQ|INE002A01018");
        await client.NextAsync("subscribed");
        for (var i = 1; i <= 3; i++)
        {
            await daemon.TickAsync("NSE_EQ|INE002A01018", 1400 + i);
            await client.NextPriceAsync("NSE_EQ|INE002A01018", 1400 + i);
        }

        await client.SendAsync("{\"action\":\"dance\"}");
        Assert.That((await client.NextAsync("error")).GetProperty("code").GetString(), Is.Not.Empty);
    }

    [Test]
    public async Task AHandshakeArrivingAByteAtATime_IsAccepted_AndTheSocketWorks()
    {
        await using var daemon = await TestDaemon.StartAsync();
        using var socket = await ConnectAsync(daemon);
        foreach (var b in Encoding.ASCII.GetBytes(Handshake()))
        {
            await socket.SendAsync(new[] { b });
        }

        await AssertAcceptedAsync(socket);
    }

    [Test]
    public async Task ARequestThatOnlyStartsLikeAHandshake_ReachesKestrel_EvenWhenItArrivesInPieces()
    {
        await using var daemon = await TestDaemon.StartAsync();
        using var socket = await ConnectAsync(daemon);
        await socket.SendAsync(Encoding.ASCII.GetBytes("GET /api/ws/pr"));
        await Task.Delay(100);
        await socket.SendAsync(Encoding.ASCII.GetBytes("ices HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        var head = await ReadHeadAsync(socket);
        Assert.That(head, Does.StartWith("HTTP/1.1 400 "), "the endpoint's answer to a request that is not a WebSocket handshake");

        using var second = await ConnectAsync(daemon);
        await second.SendAsync(Encoding.ASCII.GetBytes("GET /api/ws/prices HTTP/1.0\r\n"));
        await Task.Delay(100);
        await second.SendAsync(Encoding.ASCII.GetBytes("Host: 127.0.0.1\r\n\r\n"));
        Assert.That(await ReadHeadAsync(second), Does.StartWith("HTTP/1.1 400 "));
    }

    [Test]
    public async Task AHandshakeAfterAnotherRequestOnTheSameConnection_GoesThroughKestrel_AndWorks()
    {
        await using var daemon = await TestDaemon.StartAsync();
        using var socket = await ConnectAsync(daemon);
        await socket.SendAsync(Encoding.ASCII.GetBytes("GET /price-socket.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        var first = await ReadHeadAsync(socket);
        Assert.That(first, Does.StartWith("HTTP/1.1 200 "));
        await ReadBodyAsync(socket, first);

        await socket.SendAsync(Encoding.ASCII.GetBytes(Handshake()));
        var head = await AssertAcceptedAsync(socket);
        // Kestrel dates its responses; the connection-level path does not.
        Assert.That(head, Does.Contain("Date: "));
    }

    [Test]
    public async Task ARefusedHandshake_GetsTheStatusAndTheErrorBody_AndTheConnectionCloses()
    {
        await using var daemon = await TestDaemon.StartAsync();
        using var socket = await ConnectAsync(daemon);
        await socket.SendAsync(Encoding.ASCII.GetBytes(Handshake(extra: "Origin: http://elsewhere.example\r\n")));
        var head = await ReadHeadAsync(socket);
        Assert.That(head, Does.StartWith("HTTP/1.1 403 Forbidden"));
        Assert.That(head, Does.Not.Contain("Date: "));
        var body = await ReadBodyAsync(socket, head);
        Assert.That(body, Does.Contain("\"code\":\"origin_not_allowed\""));
        Assert.That(await socket.ReceiveAsync(new byte[1]), Is.Zero, "the connection is closed after a refusal");
    }

    /// <summary>Reads a 101 for <see cref="Key"/> and the status frame every session starts with; returns the head.</summary>
    private static async Task<string> AssertAcceptedAsync(Socket socket)
    {
        var head = await ReadHeadAsync(socket);
        Assert.That(head, Does.StartWith("HTTP/1.1 101 "));
        Assert.That(head, Does.Contain("Sec-WebSocket-Accept: " + Accept(Key)));
        Assert.That(await ReadTextFrameAsync(socket), Does.Contain("\"type\":\"status\""));
        return head;
    }

    private static async Task<Socket> ConnectAsync(TestDaemon daemon)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 10_000 };
        await socket.ConnectAsync(daemon.BaseUri.Host, daemon.BaseUri.Port);
        return socket;
    }

    private static string Accept(string key) =>
        Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));

    private static async Task<string> ReadHeadAsync(Socket socket)
    {
        // A byte at a time, so nothing after the head is taken from the socket.
        var head = new StringBuilder();
        var one = new byte[1];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await socket.ReceiveAsync(one, timeout.Token) == 0)
            {
                break;
            }

            head.Append((char)one[0]);
        }

        return head.ToString();
    }

    private static async Task<string> ReadBodyAsync(Socket socket, string head)
    {
        var length = int.Parse(head.Split("\r\n").Single(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))[15..].Trim());
        return Encoding.UTF8.GetString(await ReadExactlyAsync(socket, length));
    }

    private static async Task<byte[]> ReadExactlyAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        for (var read = 0; read < count;)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), timeout.Token);
            Assert.That(n, Is.Positive, "the connection ended early");
            read += n;
        }

        return buffer;
    }

    private static async Task<string> ReadTextFrameAsync(Socket socket)
    {
        var header = await ReadExactlyAsync(socket, 2);
        Assert.That(header[0], Is.EqualTo(0x81), "a final, unmasked text frame");
        var length = header[1] & 0x7F;
        if (length == 126)
        {
            var extended = await ReadExactlyAsync(socket, 2);
            length = (extended[0] << 8) | extended[1];
        }

        return Encoding.UTF8.GetString(await ReadExactlyAsync(socket, length));
    }

    [TestCase("/API/WS/PRICES")]
    [TestCase("/api/ws/prices/")]
    public async Task APathTheRouteTakesButTheDirectPathDoesNot_IsServedThroughTheEndpoint(string path)
    {
        await using var daemon = await TestDaemon.StartAsync();
        await daemon.TickAsync("NSE_EQ|INE002A01018", 1451.5);
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await socket.ConnectAsync(new Uri($"ws://{daemon.BaseUri.Authority}{path}"), timeout.Token);
        Assert.That(await SubscribeProbe.TypesUntilPriceAsync(socket, "NSE_EQ|INE002A01018", timeout.Token), Is.EqualTo(new[] { "status", "subscribed", "price_update" }));
    }

    [TestCase(typeof(IOException))]
    [TestCase(typeof(OperationCanceledException))]
    public async Task WhatKestrelThrowsForAConnectionPassedOn_IsKestrels_NotSwallowedAsAResetHandshake(Type thrown)
    {
        await using var daemon = await TestDaemon.StartAsync();
        var upgrade = new DirectUpgrade(_ => throw (Exception)Activator.CreateInstance(thrown, "from Kestrel's handling")!, () => daemon.Services, enabled: true);
        var input = new Pipe();
        await input.Writer.WriteAsync(Encoding.ASCII.GetBytes("GET /api/instruments HTTP/1.1\r\nHost: x\r\n\r\n"));
        var connection = new DefaultConnectionContext("test", new Duplex(input.Reader, new Pipe().Writer), new Duplex(new Pipe().Reader, input.Writer));

        var error = Assert.ThrowsAsync(thrown, () => upgrade.OnConnectionAsync(connection));
        Assert.That(error!.Message, Is.EqualTo("from Kestrel's handling"));
    }

    [TestCase(HttpProtocols.Http1AndHttp2, new[] { "http://127.0.0.1:8080" }, true)]
    [TestCase(HttpProtocols.Http1, new[] { "http://127.0.0.1:8080", "http://[::1]:8080" }, true)]
    [TestCase(HttpProtocols.Http2, new[] { "http://127.0.0.1:8080" }, false)]
    [TestCase(HttpProtocols.Http1AndHttp2, new[] { "http://127.0.0.1:8080", "https://0.0.0.0:8443" }, false)]
    [TestCase(HttpProtocols.Http1AndHttp2, new[] { "HTTPS://0.0.0.0:8443" }, false)]
    public void TheDirectPath_IsOnlyForHttp1Endpoints_OfADaemonThatTerminatesNoTls(HttpProtocols protocols, string[] urls, bool applies) =>
        Assert.That(DirectUpgrade.AppliesTo(protocols, urls), Is.EqualTo(applies));

    private sealed class Duplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input => input;

        public PipeWriter Output => output;
    }
}
