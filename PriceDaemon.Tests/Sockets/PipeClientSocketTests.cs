using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Sockets;
using PriceDaemon.Sockets.Send;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Sockets;

/// <summary>
/// The direct path's frame reader over a real <see cref="Pipe"/>, with a real sender writing its pongs and closes into
/// another pipe: masking, fragments, control frames between them, every split of the bytes across reads, the close
/// handshake, UTF-8 and the protocol errors, each failed with the code ManagedWebSocket sends.
/// </summary>
public sealed class PipeClientSocketTests
{
    private const string Subscribe = """{"action":"subscribe","instruments":["NSE_EQ|Ω€𝄞"]}""";

    [Test]
    public async Task AMaskedTextMessage_IsReadUnmasked_InChunksOfTheCallersBuffer()
    {
        using var harness = new Harness();
        await harness.WriteAsync(ClientFrame(0x1, Encoding.UTF8.GetBytes(Subscribe)));

        var (type, text) = await ReadMessageAsync(harness.Socket, bufferSize: 5);

        Assert.That(type, Is.EqualTo(WebSocketMessageType.Text));
        Assert.That(text, Is.EqualTo(Subscribe));
    }

    [Test]
    public async Task AFragmentedMessage_WithAPingAndAPongBetweenItsFragments_IsOneMessage_AndThePingIsAnswered()
    {
        using var harness = new Harness();
        await harness.WriteAsync(Script());

        var (type, text) = await ReadMessageAsync(harness.Socket, bufferSize: 3);
        Assert.That((type, text), Is.EqualTo((WebSocketMessageType.Text, Subscribe)));
        var pong = await harness.ReadServerFrameAsync();
        Assert.That((pong.Opcode, Encoding.UTF8.GetString(pong.Payload)), Is.EqualTo((0xA, "hi")), "the ping's payload comes back");
    }

    /// <summary>Two fragments, a ping and a pong between them, then a close; split at every byte, and written a byte at a time.</summary>
    [Test]
    public async Task EverySplitOfTheBytesAcrossReads_GivesTheSameMessagePongAndClose()
    {
        var script = Script().Concat(ClientFrame(0x8, [0x03, 0xE8, .. "bye"u8.ToArray()])).ToArray();
        for (var split = 0; split <= script.Length; split++)
        {
            using var harness = new Harness();
            await harness.WriteAsync(script.AsMemory(0, split));
            var reading = ReadMessageAsync(harness.Socket, bufferSize: 4);
            await harness.WriteAsync(script.AsMemory(split));
            await AssertScriptAsync(harness, await reading, $"split at {split}");
        }

        using var slow = new Harness();
        var read = ReadMessageAsync(slow.Socket, bufferSize: 64);
        foreach (var b in script)
        {
            await slow.WriteAsync(new[] { b });
        }

        await AssertScriptAsync(slow, await read, "a byte at a time");
    }

    [Test]
    [TestCase(4000)]
    [TestCase(1012)] // service restart, try again later, bad gateway: proxies send these
    [TestCase(1013)]
    [TestCase(1014)]
    public async Task ACloseWithACode_IsReported_AndEchoed(int code)
    {
        using var harness = new Harness();
        await harness.WriteAsync(ClientFrame(0x8, [(byte)(code >> 8), (byte)code, .. "done"u8.ToArray()]));

        var result = await harness.Socket.ReceiveAsync(Memory<byte>.Empty);
        Assert.That(result.MessageType, Is.EqualTo(WebSocketMessageType.Close));
        Assert.That(harness.Socket.CloseStatus, Is.EqualTo((WebSocketCloseStatus)code));

        // What the session does with it: the sender writes the same code back as its last frame.
        harness.Sender.BeginClose(harness.Socket.CloseStatus!.Value, "");
        var close = await harness.ReadServerFrameAsync();
        Assert.That((close.Opcode, BinaryPrimitives.ReadUInt16BigEndian(close.Payload)), Is.EqualTo((0x8, (ushort)code)));
        Assert.That(harness.Socket.CanSendClose, Is.False);
    }

    [Test]
    public async Task ACloseWithoutACode_IsEmpty_AndEchoedWithoutABody()
    {
        using var harness = new Harness();
        await harness.WriteAsync(ClientFrame(0x8, []));

        Assert.That((await harness.Socket.ReceiveAsync(new byte[16])).MessageType, Is.EqualTo(WebSocketMessageType.Close));
        Assert.That(harness.Socket.CloseStatus, Is.EqualTo(WebSocketCloseStatus.Empty));
        harness.Sender.BeginClose(WebSocketCloseStatus.Empty, "");
        var close = await harness.ReadServerFrameAsync();
        Assert.That((close.Opcode, close.Payload.Length), Is.EqualTo((0x8, 0)));
    }

    [Test]
    public async Task ABinaryMessage_IsReportedOnItsHeader_WithNoneOfItsPayloadTaken()
    {
        using var harness = new Harness();
        await harness.WriteAsync(ClientFrame(0x2, new byte[300]));

        var result = await harness.Socket.ReceiveAsync(Memory<byte>.Empty);
        Assert.That((result.MessageType, result.Count, result.EndOfMessage), Is.EqualTo((WebSocketMessageType.Binary, 0, false)));
    }

    /// <summary>A frame may announce far more than the session's limit: the reader hands over what arrived, a buffer at a time, and holds none of it.</summary>
    [Test]
    public async Task AnOversizedFrame_IsHandedOverABufferAtATime_AndAPendingReadEndsOnAbort()
    {
        using var harness = new Harness();
        var payload = Enumerable.Repeat((byte)'a', 1000).ToArray();
        await harness.WriteAsync(ClientFrame(0x1, payload, declaredLength: 1L << 40));

        var buffer = new byte[64];
        Assert.That((await harness.Socket.ReceiveAsync(Memory<byte>.Empty)).EndOfMessage, Is.False);
        var total = 0;
        while (total < payload.Length)
        {
            var result = await harness.Socket.ReceiveAsync(buffer);
            Assert.That(result.EndOfMessage, Is.False);
            Assert.That(buffer.AsSpan(0, result.Count).IndexOfAnyExcept((byte)'a'), Is.EqualTo(-1));
            total += result.Count;
        }

        Assert.That(total, Is.EqualTo(payload.Length));
        var pending = harness.Socket.ReceiveAsync(buffer).AsTask();
        harness.Socket.Abort();
        Assert.That(async () => await pending, Throws.InstanceOf<OperationCanceledException>());
        Assert.That(harness.Socket.CanSendClose, Is.False, "an aborted socket writes no close frame");
    }

    /// <summary>The wait for a message's start is the socket itself (no async method): it ends on abort, and on bytes that arrive.</summary>
    [Test]
    public async Task TheWaitForAMessage_EndsOnAbort_AndOnItsFirstBytes()
    {
        using var aborted = new Harness();
        var waiting = aborted.Socket.ReceiveAsync(Memory<byte>.Empty).AsTask();
        aborted.Socket.Abort();
        Assert.That(async () => await waiting, Throws.InstanceOf<OperationCanceledException>());

        using var harness = new Harness();
        for (var i = 0; i < 3; i++)
        {
            var start = harness.Socket.ReceiveAsync(Memory<byte>.Empty).AsTask();
            await harness.WriteAsync(ClientFrame(0x9, [(byte)i]));
            await harness.WriteAsync(ClientFrame(0x1, "{}"u8.ToArray()));
            Assert.That((await start).MessageType, Is.EqualTo(WebSocketMessageType.Text), $"message {i}");
            Assert.That((await harness.ReadServerFrameAsync()).Payload, Is.EqualTo(new[] { (byte)i }), "its ping answered on the way");
            var buffer = new byte[8];
            Assert.That((await harness.Socket.ReceiveAsync(buffer)).Count, Is.EqualTo(2));
        }
    }

    [Test]
    public async Task APeerThatGoesAwayMidFrame_EndsTheReadWithAWebSocketException()
    {
        using var harness = new Harness();
        await harness.WriteAsync(ClientFrame(0x1, "{\"act"u8.ToArray()).AsMemory(0, 4));
        await harness.Input.Writer.CompleteAsync();

        var error = Assert.ThrowsAsync<WebSocketException>(async () => await ReadMessageAsync(harness.Socket, 16));
        Assert.That(error!.WebSocketErrorCode, Is.EqualTo(WebSocketError.ConnectionClosedPrematurely));
    }

    private static IEnumerable<TestCaseData> BadUtf8()
    {
        yield return new TestCaseData((object)new[] { ClientFrame(0x1, [0x22, 0xE2], fin: false), ClientFrame(0x0, [0x28, 0x22]) }).SetName("invalid across fragments");
        yield return new TestCaseData((object)new[] { ClientFrame(0x1, [0x22, 0xE2, 0x82]) }).SetName("a sequence open at the end");
        yield return new TestCaseData((object)new[] { ClientFrame(0x1, [0x22, 0xC0, 0x80, 0x22]) }).SetName("overlong");
        yield return new TestCaseData((object)new[] { ClientFrame(0x1, [0x22, 0xED, 0xA0, 0x80, 0x22]) }).SetName("a surrogate");
        yield return new TestCaseData((object)new[] { ClientFrame(0x1, [0x22, 0xF0], fin: false), ClientFrame(0x0, []), ClientFrame(0x0, [0x9D, 0x84]) }).SetName("open at the end after an empty fragment");
    }

    [TestCaseSource(nameof(BadUtf8))]
    public async Task InvalidUtf8_FailsTheConnectionWith1007(byte[][] frames)
    {
        using var harness = new Harness();
        await harness.WriteAsync(frames.SelectMany(f => f).ToArray());

        Assert.ThrowsAsync<WebSocketException>(async () => await ReadMessageAsync(harness.Socket, bufferSize: 1));
        var close = await harness.ReadServerFrameAsync();
        Assert.That((close.Opcode, BinaryPrimitives.ReadUInt16BigEndian(close.Payload)), Is.EqualTo((0x8, (ushort)1007)));
    }

    [Test]
    public async Task ValidUtf8_SplitAcrossFragmentsAndReads_AtEveryByte_IsAccepted()
    {
        var bytes = Encoding.UTF8.GetBytes("\"aé€𝄞z\"");
        for (var split = 0; split <= bytes.Length; split++)
        {
            using var harness = new Harness();
            await harness.WriteAsync(ClientFrame(0x1, bytes[..split], fin: false).Concat(ClientFrame(0x0, bytes[split..])).ToArray());
            Assert.That((await ReadMessageAsync(harness.Socket, bufferSize: 1)).Text, Is.EqualTo("\"aé€𝄞z\""), $"split at {split}");
        }
    }

    private static IEnumerable<TestCaseData> ProtocolErrors()
    {
        var valid = Encoding.UTF8.GetBytes("{}");
        yield return new TestCaseData((object)ClientFrame(0x1, valid, masked: false)).SetName("unmasked");
        yield return new TestCaseData((object)ClientFrame(0x1, valid, rsv: 4)).SetName("RSV1 without an extension");
        yield return new TestCaseData((object)ClientFrame(0x3, valid)).SetName("reserved data opcode");
        yield return new TestCaseData((object)ClientFrame(0xB, valid)).SetName("reserved control opcode");
        yield return new TestCaseData((object)ClientFrame(0x0, valid)).SetName("continuation without a start");
        yield return new TestCaseData((object)ClientFrame(0x1, valid, fin: false).Concat(ClientFrame(0x1, valid)).ToArray()).SetName("a new message inside a fragmented one");
        yield return new TestCaseData((object)ClientFrame(0x9, valid, fin: false)).SetName("fragmented ping");
        yield return new TestCaseData((object)ClientFrame(0x9, new byte[126])).SetName("oversized ping");
        yield return new TestCaseData((object)ClientFrame(0x8, [3])).SetName("close with a 1-byte body");
        yield return new TestCaseData((object)ClientFrame(0x8, [0x03, 0xE7])).SetName("close code 999");
        yield return new TestCaseData((object)ClientFrame(0x8, [0x03, 0xEE])).SetName("close code 1006");
        yield return new TestCaseData((object)ClientFrame(0x8, [0x03, 0xE8, 0xFF])).SetName("a close reason that is not UTF-8 (1002, as ManagedWebSocket)");
        yield return new TestCaseData((object)ClientFrame(0x8, [0x03, 0xF7])).SetName("close code 1015");
        yield return new TestCaseData((object)ClientFrame(0x1, valid, declaredLength: long.MinValue)).SetName("a length with its top bit set");
    }

    [TestCaseSource(nameof(ProtocolErrors))]
    public async Task AProtocolError_FailsTheConnectionWith1002(byte[] bytes)
    {
        using var harness = new Harness();
        await harness.WriteAsync(bytes);

        Assert.ThrowsAsync<WebSocketException>(async () => await ReadMessageAsync(harness.Socket, bufferSize: 16));
        var close = await harness.ReadServerFrameAsync();
        Assert.That((close.Opcode, BinaryPrimitives.ReadUInt16BigEndian(close.Payload)), Is.EqualTo((0x8, (ushort)1002)));
        Assert.That(harness.Socket.CanSendClose, Is.False, "the close frame is written once");
    }

    /// <summary>The first fragment of <see cref="Subscribe"/>, a ping, a pong, the rest in a continuation.</summary>
    private static byte[] Script()
    {
        var message = Encoding.UTF8.GetBytes(Subscribe);
        return
        [
            .. ClientFrame(0x1, message[..20], fin: false),
            .. ClientFrame(0x9, "hi"u8.ToArray()),
            .. ClientFrame(0xA, "unsolicited"u8.ToArray()),
            .. ClientFrame(0x0, message[20..]),
        ];
    }

    private static async Task AssertScriptAsync(Harness harness, (WebSocketMessageType Type, string Text) message, string context)
    {
        Assert.That(message, Is.EqualTo((WebSocketMessageType.Text, Subscribe)), context);
        var pong = await harness.ReadServerFrameAsync();
        Assert.That((pong.Opcode, Encoding.UTF8.GetString(pong.Payload)), Is.EqualTo((0xA, "hi")), context);
        Assert.That((await harness.Socket.ReceiveAsync(Memory<byte>.Empty)).MessageType, Is.EqualTo(WebSocketMessageType.Close), context);
        Assert.That(harness.Socket.CloseStatus, Is.EqualTo(WebSocketCloseStatus.NormalClosure), context);
    }

    /// <summary>Reads one message as the session does: an empty read for its start, then the caller's buffer until its end.</summary>
    private static async Task<(WebSocketMessageType Type, string Text)> ReadMessageAsync(IClientSocket socket, int bufferSize)
    {
        var result = await socket.ReceiveAsync(Memory<byte>.Empty);
        var bytes = new List<byte>();
        var buffer = new byte[bufferSize];
        while (!result.EndOfMessage)
        {
            result = await socket.ReceiveAsync(buffer);
            Assert.That(result.Count, Is.LessThanOrEqualTo(bufferSize));
            bytes.AddRange(buffer.AsSpan(0, result.Count));
        }

        return (result.MessageType, Encoding.UTF8.GetString([.. bytes]));
    }

    /// <summary>A client frame (RFC 6455 §5.2), masked with a fixed non-trivial key unless told otherwise.</summary>
    internal static byte[] ClientFrame(byte opcode, byte[] payload, bool fin = true, bool masked = true, byte rsv = 0, long? declaredLength = null)
    {
        var length = declaredLength ?? payload.Length;
        var frame = new List<byte> { (byte)((fin ? 0x80 : 0) | (rsv << 4) | opcode) };
        var maskBit = masked ? 0x80 : 0;
        if (length is >= 0 and < 126)
        {
            frame.Add((byte)(maskBit | (int)length));
        }
        else if (length is >= 0 and <= ushort.MaxValue)
        {
            frame.AddRange([(byte)(maskBit | 126), (byte)(length >> 8), (byte)length]);
        }
        else
        {
            var extended = new byte[8];
            BinaryPrimitives.WriteInt64BigEndian(extended, length);
            frame.Add((byte)(maskBit | 127));
            frame.AddRange(extended);
        }

        byte[] key = [0x37, 0xFA, 0x21, 0x3D];
        if (masked)
        {
            frame.AddRange(key);
        }

        frame.AddRange(masked ? payload.Select((b, i) => (byte)(b ^ key[i & 3])) : payload);
        return [.. frame];
    }

    /// <summary>A server frame read back from the output pipe.</summary>
    private readonly record struct ServerFrame(int Opcode, byte[] Payload);

    private sealed class Harness : IDisposable
    {
        private readonly SendPump _pump = new(1);
        private readonly Pipe _output = new();

        public Harness()
        {
            var instruments = new InstrumentRegistry([("NSE_EQ|TEST0", "T0", "Test 0", 100.0)]);
            var time = new FakeTimeProvider();
            var services = new SessionServices(
                instruments, new SubscriptionIndex(instruments), new PriceCache(instruments), new FeedStatus(), new PipelineMetrics(new TestMeterFactory()),
                Options.Create(new LimitsOptions()), time, NullLoggerFactory.Instance, new NoUpstreamInterest(), _pump)
            {
                KeepAliveTime = time,
            };
            var sink = new PipeSink(_output.Writer);
            Sender = new SocketSender(1, "test", sink, static () => { }, services);
            Socket = new PipeClientSocket(Input.Reader, Sender, sink);
            Sender.Attach(Socket);
        }

        public Pipe Input { get; } = new();

        public SocketSender Sender { get; }

        public PipeClientSocket Socket { get; }

        public async Task WriteAsync(ReadOnlyMemory<byte> bytes) => await Input.Writer.WriteAsync(bytes);

        public async Task<ServerFrame> ReadServerFrameAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (true)
            {
                var read = await _output.Reader.ReadAsync(timeout.Token);
                var buffer = read.Buffer.ToArray();
                if (buffer.Length >= 2 && buffer.Length >= 2 + (buffer[1] & 0x7F))
                {
                    var length = buffer[1] & 0x7F; // pongs and closes: never an extended length
                    _output.Reader.AdvanceTo(read.Buffer.GetPosition(2 + length));
                    return new ServerFrame(buffer[0] & 0x0F, buffer[2..(2 + length)]);
                }

                _output.Reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
            }
        }

        public void Dispose() => _pump.Dispose();
    }

    /// <summary>The sender's bytes into a pipe, as Kestrel's output pipe takes them.</summary>
    private sealed class PipeSink(PipeWriter writer) : IFrameSink
    {
        public async ValueTask WriteAsync(ReadOnlyMemory<byte> bytes) => await writer.WriteAsync(bytes);

        public void Cancel() => writer.CancelPendingFlush();
    }
}
