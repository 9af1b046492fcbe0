using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using PriceDaemon.Benchmarks.EndToEnd;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Benchmarks;

/// <summary>The harness's load generator: its clients, their epoll receive thread and their frame handling.</summary>
public sealed partial class LoadRunTests
{
    [Test]
    public async Task Clients_AgainstTheDaemon_EndOnTheLastPriceOfEverySubscription()
    {
        await using var daemon = await TestDaemon.StartAsync();
        using var http = daemon.Http();
        var keys = await LoadRun.GetInstrumentKeysAsync(http, daemon.BaseUri);
        // 20 clients x 5 contiguous subscriptions over the 50 NIFTY instruments: each is held by two clients.
        await using var run = await LoadRun.ConnectAsync(daemon.BaseUri, keys, clients: 20, subscriptionsPerClient: 5, CancellationToken.None);
        run.StartMeasuring();

        var ticked = keys.Take(10).ToArray();
        var last = new Dictionary<string, double>();
        for (var round = 1; round <= 3; round++)
        {
            for (var i = 0; i < ticked.Length; i++)
            {
                last[ticked[i]] = 1_000 + (round * 10) + i;
                await daemon.TickAsync(ticked[i], last[ticked[i]]);
            }

            // Each round delivered before the next, so no update replaces an unsent one and every frame counts.
            await Eventually.TrueAsync(
                () => run.LastValues().Where(v => last.ContainsKey(v.InstrumentKey)).All(v => v.Received?.LastPrice == last[v.InstrumentKey]),
                $"every client holds round {round}'s price of every ticked instrument");
        }

        Assert.Multiple(() =>
        {
            Assert.That(run.LastValues().Count(v => last.ContainsKey(v.InstrumentKey)), Is.EqualTo(20));
            // Three updates per subscription: the first is not timed (it could be a snapshot), the other two are.
            Assert.That(run.FramesMeasured, Is.EqualTo(60));
            Assert.That(run.Latency.Count, Is.EqualTo(40));
            Assert.That(run.ProtocolErrors, Is.Zero, run.FirstProtocolError);
            Assert.That(run.OutOfOrderFrames, Is.Zero);
            Assert.That(run.ClosedConnections, Is.Zero);
        });
    }

    [Test]
    public async Task Client_JoinsFramesCutAcrossReads_AndAnswersPings()
    {
        await using var fake = await FakeServer.ConnectAsync();
        var (run, socket) = (fake.Run, fake.Socket);

        var a = PriceFrame(0, FakeKeys[0], 101.5);
        var b = PriceFrame(1, FakeKeys[1], 202.5);
        var c = PriceFrame(2, FakeKeys[2], 303.5);
        await socket.SendAsync(Join(a, b[..(b.Length / 2)]));
        await Eventually.TrueAsync(() => Received(run, FakeKeys[0]) == 101.5, "the whole first frame is read");
        Assert.That(Received(run, FakeKeys[1]), Is.Null, "half a frame is kept, not parsed");

        // The rest of the cut frame, a whole frame cut at its header, and a ping in between.
        await socket.SendAsync(Join(b[(b.Length / 2)..], c[..1]));
        await Eventually.TrueAsync(() => Received(run, FakeKeys[1]) == 202.5, "the cut frame is joined");
        await socket.SendAsync(Join(c[1..], ServerFrame(WebSocketOpcode.Ping, "are you there"u8)));
        await Eventually.TrueAsync(() => Received(run, FakeKeys[2]) == 303.5, "a frame cut after one byte is joined");

        var (opcode, payload) = await ReadClientFrameAsync(socket);
        Assert.That((opcode, Encoding.ASCII.GetString(payload)), Is.EqualTo((0xA, "are you there")));
        Assert.That(run.ProtocolErrors, Is.Zero, run.FirstProtocolError);
    }

    [Test]
    public async Task Client_CarriesAFrameLargerThanItsBuffer_AndEndsOnACloseFrame()
    {
        await using var fake = await FakeServer.ConnectAsync();
        var (run, socket) = (fake.Run, fake.Socket);

        // 40 KB of JSON in one frame, written in 4 KB pieces: the client carries it across reads in a buffer
        // of its own (16 KB to start), which has to grow twice. The pauses let the pieces arrive apart; if
        // they ever coalesce, the frame is still whole and the test still holds.
        var big = PriceFrame(0, FakeKeys[0], 404.5, padding: 40_000);
        for (var at = 0; at < big.Length; at += 4096)
        {
            await socket.SendAsync(big[at..Math.Min(big.Length, at + 4096)]);
            await Task.Delay(10);
        }

        await Eventually.TrueAsync(() => Received(run, FakeKeys[0]) == 404.5, "the large frame is read whole");
        await socket.SendAsync(ServerFrame(WebSocketOpcode.Close, [0x03, 0xE9]));
        await Eventually.TrueAsync(() => run.ClosedConnections == 1, "a close frame ends the connection");
        Assert.That(run.ProtocolErrors, Is.Zero, run.FirstProtocolError);
    }

    private static readonly string[] FakeKeys = ["NSE_EQ|SYN0000001", "NSE_EQ|SYN0000002", "NSE_EQ|SYN0000003"];

    private static byte[] Join(byte[] first, byte[] second) => [.. first, .. second];

    private static double? Received(LoadRun run, string key) =>
        run.LastValues().Single(v => v.InstrumentKey == key).Received?.LastPrice;

    private static byte[] PriceFrame(int id, string key, double price, int padding = 0)
    {
        var instrument = new Instrument(id, key, key[7..], key, price);
        var tick = new Tick(id, price, 100, LoadClient.UnixMicrosecondsNow(), 0, PriceSource.Live);
        var json = new FrameEncoder(microseconds: true).Encode(instrument, tick, seq: 1, price).Utf8.ToArray();
        if (padding > 0)
        {
            // An extra field after the ones the client reads makes the frame as large as wanted.
            json = [.. json[..^1], .. Encoding.ASCII.GetBytes($",\"pad\":\"{new string('x', padding)}\"}}")];
        }

        return ServerFrame(WebSocketOpcode.Text, json);
    }

    private static byte[] ServerFrame(WebSocketOpcode opcode, ReadOnlySpan<byte> payload)
    {
        var frame = new byte[payload.Length + 10];
        return frame[..WebSocketFrameParser.WriteServerFrame(frame, opcode, payload)];
    }

    /// <summary>Plays the server's side of the handshake and acknowledges the subscription.</summary>
    private static async Task<Socket> AcceptAndAcknowledgeAsync(TcpListener listener)
    {
        var socket = await listener.AcceptSocketAsync();
        var request = await ReadUntilAsync(socket, "\r\n\r\n");
        var key = KeyHeader().Match(request).Groups[1].Value;
        // The status frame goes in the same write as the response, as the daemon sends it: the client must
        // parse what arrived with its handshake.
        await socket.SendAsync(Join(
            Encoding.ASCII.GetBytes($"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {WebSocketHandshake.ExpectedAccept(key)}\r\n\r\n"),
            ServerFrame(WebSocketOpcode.Text, """{"type":"status","feed":"connected"}"""u8)));
        var (opcode, subscribe) = await ReadClientFrameAsync(socket);
        Assert.That(opcode, Is.EqualTo(0x1), "the subscription is a text frame");
        Assert.That(Encoding.UTF8.GetString(subscribe), Does.StartWith("""{"action":"subscribe","instruments":[""").And.Contains("SYN0000003"));
        await socket.SendAsync(ServerFrame(WebSocketOpcode.Text, """{"type":"subscribed","instruments":[]}"""u8));
        return socket;
    }

    private static async Task<string> ReadUntilAsync(Socket socket, string end)
    {
        var text = new StringBuilder();
        var buffer = new byte[1];
        while (!text.ToString().EndsWith(end, StringComparison.Ordinal))
        {
            Assert.That(await socket.ReceiveAsync(buffer), Is.EqualTo(1), "the client closed the connection");
            text.Append((char)buffer[0]);
        }

        return text.ToString();
    }

    /// <summary>One masked client frame with a payload under 126 bytes: its opcode and unmasked payload.</summary>
    private static async Task<(int Opcode, byte[] Payload)> ReadClientFrameAsync(Socket socket)
    {
        var head = await ReadExactlyAsync(socket, 6);
        Assert.That(head[1] & 0x80, Is.EqualTo(0x80), "client frames are masked");
        var payload = await ReadExactlyAsync(socket, head[1] & 0x7F);
        for (var i = 0; i < payload.Length; i++)
        {
            payload[i] ^= head[2 + (i % 4)];
        }

        return (head[0] & 0x0F, payload);
    }

    private static async Task<byte[]> ReadExactlyAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(Eventually.Timeout);
        return buffer;
    }

    [GeneratedRegex(@"Sec-WebSocket-Key: (\S+)\r\n", RegexOptions.IgnoreCase)]
    private static partial Regex KeyHeader();

    /// <summary>One load client subscribed to <see cref="FakeKeys"/> on a loopback server played by the test.</summary>
    private sealed class FakeServer : IAsyncDisposable
    {
        private readonly TcpListener _listener;

        private FakeServer(TcpListener listener, LoadRun run, Socket socket) => (_listener, Run, Socket) = (listener, run, socket);

        public LoadRun Run { get; }

        /// <summary>The server's end of the client's connection.</summary>
        public Socket Socket { get; }

        public static async Task<FakeServer> ConnectAsync()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var baseUri = new Uri($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}");
            var server = AcceptAndAcknowledgeAsync(listener);
            var run = await LoadRun.ConnectAsync(baseUri, FakeKeys, clients: 1, subscriptionsPerClient: FakeKeys.Length, CancellationToken.None);
            return new FakeServer(listener, run, await server);
        }

        public async ValueTask DisposeAsync()
        {
            await Run.DisposeAsync();
            Socket.Dispose();
            _listener.Dispose();
        }
    }
}
