using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Security;

/// <summary>
/// Thousands of malformed messages over several connections, each with the answer DESIGN.md specifies, while a
/// well-behaved client on another connection keeps receiving its prices in order and nothing else.
/// </summary>
public sealed class ProtocolFuzzTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";
    private const string Tcs = "NSE_EQ|INE467B01029";
    private const int Workers = 6;
    private const int MessagesPerWorker = 1000;
    private const int MaxMessageBytes = 16 * 1024;
    private const int BadMessageBudget = 20;
    private const int ChangeBudget = 10;

    private enum Outcome
    {
        /// <summary>An <c>error</c> frame with the expected code; counts as a bad message.</summary>
        Error,

        /// <summary>A well-formed change of unknown instruments: <c>unknown_instrument</c> (if any) and an ack, or <c>rate_limited</c>.</summary>
        Change,

        /// <summary><c>message_too_large</c>, then close 1009.</summary>
        TooLarge,

        /// <summary>Close 1007 from the WebSocket layer, before the daemon sees the message.</summary>
        InvalidUtf8,
    }

    private readonly record struct Case(string Kind, byte[] Bytes, Outcome Outcome, string? Code = null, bool HasInstruments = false);

    [Test]
    public async Task MalformedMessages_GetTheSpecifiedAnswer_WhileAWellBehavedClientKeepsItsOrderedPrices()
    {
        var logs = new LogCapture();
        await using var daemon = await TestDaemon.StartAsync(configure: logs.Install);
        var watch = Stopwatch.StartNew();

        await using var good = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await good.SubscribeAsync(Reliance);
        await good.NextAsync("subscribed");

        using var stopTicks = new CancellationTokenSource();
        var ticker = Task.Run(async () =>
        {
            var price = 1400.0;
            // Reliance is the good client's; TCS ticks too, and must never reach it.
            for (var i = 0; i < 20_000 && !stopTicks.IsCancellationRequested; i++)
            {
                price += 0.05;
                await daemon.TickAsync(i % 2 == 0 ? Reliance : Tcs, Math.Round(price, 2));
                await Task.Delay(2, CancellationToken.None);
            }
        });

        var fuzzers = Enumerable.Range(0, Workers).Select(w => Task.Run(() => FuzzAsync(daemon, seed: 1000 + w))).ToList();
        var raw = Task.Run(() => RawFramesAsync(daemon));
        var counts = await Task.WhenAll(fuzzers);
        var rawCount = await raw;
        await stopTicks.CancelAsync();
        await ticker;

        // The daemon is still up, still serves new clients, and the good client saw every price in order.
        await daemon.TickAsync(Reliance, 9999.5);
        await good.NextPriceAsync(Reliance, 9999.5);
        var seqs = good.SeqsOf(Reliance);
        Assert.That(seqs, Has.Count.GreaterThan(50));
        Assert.That(seqs, Is.Ordered.Ascending.And.Unique);
        Assert.That(good.PricesOf(Tcs), Is.Empty);
        Assert.That(good.Socket.State, Is.EqualTo(WebSocketState.Open));
        using var http = daemon.Http();
        Assert.That((int)(await http.GetAsync("/health/live")).StatusCode, Is.EqualTo(200));

        Assert.That(counts.Sum() + rawCount, Is.GreaterThan(4000));
        Assert.That(logs.Failures, Is.Empty);
        TestContext.Out.WriteLine($"{counts.Sum()} messages and {rawCount} raw-frame connections in {watch.Elapsed.TotalSeconds:F1} s");
    }

    [Test]
    public async Task EscapedLoneSurrogate_GetsInvalidMessage_AndCountsAsABadMessageWithoutClosingTheConnection()
    {
        // Valid UTF-8 (the escape is six ASCII bytes), so it passes the WebSocket layer and reaches the parser; the
        // string it escapes is not valid UTF-16.
        const string LoneSurrogate = """{"action":"subscribe","instruments":["NSE_EQ|\uD800"]}""";
        var logs = new LogCapture();
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Limits:MaxBadMessagesPerMinute"] = "2" }, configure: logs.Install);
        await using var client = await SecureClient.ConnectAsync(daemon.WebSocketUri);
        Assert.That(SecureClient.Type(await client.NextAsync()), Is.EqualTo("status"));

        for (var i = 0; i < 2; i++)
        {
            await client.SendAsync(LoneSurrogate);
            Assert.That(await ErrorCodeAsync(client), Is.EqualTo("invalid_message"));
        }

        var ack = await client.SubscribeAckAsync(Reliance);
        Assert.That(SecureClient.Keys(ack, "instruments"), Is.EqualTo(new[] { Reliance }));
        Assert.That(client.Socket.State, Is.EqualTo(WebSocketState.Open));

        // The third in the minute is over the budget of two: it is answered, then the connection is closed for abuse.
        await client.SendAsync(LoneSurrogate);
        Assert.That(await ErrorCodeAsync(client), Is.EqualTo("invalid_message"));
        Assert.That(await client.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.PolicyViolation));
        Assert.That(logs.Failures, Is.Empty);
    }

    /// <summary>Sends generated messages one at a time and checks each answer; reconnects after each specified close.</summary>
    private static async Task<int> FuzzAsync(TestDaemon daemon, int seed)
    {
        var random = new Random(seed);
        var sent = 0;
        while (sent < MessagesPerWorker)
        {
            await using var client = await SecureClient.ConnectAsync(daemon.WebSocketUri);
            Assert.That(SecureClient.Type(await client.NextAsync()), Is.EqualTo("status"));
            var bad = 0;
            var changes = 0;
            var open = true;
            while (open && sent < MessagesPerWorker)
            {
                var message = Generate(random);
                sent++;
                await client.SendAsync(message.Bytes);
                var context = $"seed {seed}, message {sent} ({message.Kind}): {Preview(message.Bytes)}";
                switch (message.Outcome)
                {
                    case Outcome.Error:
                        Assert.That(await ErrorCodeAsync(client), Is.EqualTo(message.Code), context);
                        if (++bad > BadMessageBudget)
                        {
                            Assert.That(await client.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.PolicyViolation), context);
                            open = false;
                        }

                        break;
                    case Outcome.Change:
                        if (++changes > ChangeBudget)
                        {
                            var limited = await client.NextAsync();
                            Assert.That(limited.GetProperty("code").GetString(), Is.EqualTo("rate_limited"), context);
                            Assert.That(limited.GetProperty("retry_after_ms").GetInt64(), Is.InRange(1, 60_000), context);
                            break;
                        }

                        if (message.HasInstruments)
                        {
                            Assert.That(await ErrorCodeAsync(client), Is.EqualTo("unknown_instrument"), context);
                        }

                        var ack = await client.NextAsync();
                        Assert.That(SecureClient.Type(ack), Is.EqualTo("subscribed"), context);
                        Assert.That(ack.GetProperty("instruments").GetArrayLength(), Is.Zero, context);
                        break;
                    case Outcome.TooLarge:
                        Assert.That(await ErrorCodeAsync(client), Is.EqualTo("message_too_large"), context);
                        Assert.That(await client.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.MessageTooBig), context);
                        open = false;
                        break;
                    case Outcome.InvalidUtf8:
                        // RFC 6455 7.1.7: the server fails the connection and MAY send 1007 first. ASP.NET Core's
                        // WebSocket sends it, then aborts; now and then the abort overtakes the frame.
                        var status = await client.WaitClosedAsync();
                        Assert.That(status, Is.EqualTo(WebSocketCloseStatus.InvalidPayloadData).Or.Null, () => $"{context} {client.Failure}");
                        Assert.That(client.Socket.State, Is.AnyOf(WebSocketState.CloseReceived, WebSocketState.Aborted, WebSocketState.Closed), context);
                        open = false;
                        break;
                }
            }

            // Nothing but answers: no fuzz connection subscribed to a real instrument, so no price may arrive.
            Assert.That(client.Frames.Where(f => SecureClient.Type(f) == "price_update"), Is.Empty);
        }

        return sent;
    }

    private static async Task<string?> ErrorCodeAsync(SecureClient client)
    {
        var frame = await client.NextAsync();
        return SecureClient.Type(frame) == "error" ? frame.GetProperty("code").GetString() : $"<{frame}>";
    }

    private static Case Generate(Random random)
    {
        var kind = random.Next(16);
        var @case = kind switch
        {
            0 => Garbage(random),
            1 => RandomBytes(random),
            2 => Truncated(random),
            3 => DeepNesting(random),
            4 => HugeArray(random),
            5 => Bad("wrong_type", Pick(random, WrongTypes), "invalid_message"),
            6 => Bad("null", Pick(random, Nulls), "invalid_message"),
            7 => LongAction(random),
            8 => Bad("unknown_action", $$"""{"action":"{{Pick(random, ["buy", "Subscribe", "SUBSCRIBE", "sub scribe", "", "subscribe\\u0000", "\\u00e9"])}}","instruments":[]}""", "unknown_action"),
            9 => Bad("missing", Pick(random, Missing), "invalid_message"),
            10 => Bad("trailing", Pick(random, Trailing), "invalid_message"),
            11 => InvalidUtf8InString(random),
            12 => Bad("empty", "", "invalid_message"),
            _ => WellFormed(random),
        };

        if (@case.Bytes.Length > MaxMessageBytes)
        {
            return @case with { Outcome = Outcome.TooLarge };
        }

        return Utf8.IsValid(@case.Bytes) ? @case : @case with { Outcome = Outcome.InvalidUtf8 };
    }

    private static readonly string[] WrongTypes =
    [
        """{"action":42,"instruments":[]}""",
        """{"action":true,"instruments":[]}""",
        """{"action":["subscribe"],"instruments":[]}""",
        """{"action":{"name":"subscribe"},"instruments":[]}""",
        """{"action":"subscribe","instruments":"NSE_EQ|INE002A01018"}""",
        """{"action":"subscribe","instruments":{"0":"NSE_EQ|INE002A01018"}}""",
        """{"action":"subscribe","instruments":[42]}""",
        """{"action":"subscribe","instruments":[["NSE_EQ|INE002A01018"]]}""",
        """{"action":"subscribe","instruments":[{}]}""",
        """{"action":"unsubscribe","instruments":[true,false]}""",
        """{"action":"subscribe","instruments":12e999}""",
        "42", "\"subscribe\"", "true", "[]", "[{\"action\":\"subscribe\",\"instruments\":[]}]",
    ];

    private static readonly string[] Nulls =
    [
        "null",
        """{"action":null,"instruments":[]}""",
        """{"action":"subscribe","instruments":null}""",
        """{"action":"subscribe","instruments":[null]}""",
        """{"action":"unsubscribe","instruments":["NSE_EQ|X",null]}""",
    ];

    private static readonly string[] Missing =
    [
        "{}",
        """{"action":"subscribe"}""",
        """{"instruments":["NSE_EQ|INE002A01018"]}""",
        """{"Action":"subscribe","Instruments":[]}""",
    ];

    private static readonly string[] Trailing =
    [
        """{"action":"subscribe","instruments":[]} x""",
        """{"action":"subscribe","instruments":[]}{"action":"subscribe","instruments":[]}""",
        """{"action":"subscribe","instruments":[],}""",
        """{"action":"subscribe","instruments":[] /* comment */}""",
        """{'action':'subscribe','instruments':[]}""",
        """{action:"subscribe",instruments:[]}""",
        """{"action":"subscribe","instruments":[,]}""",
    ];

    private static Case Bad(string kind, string text, string code) => new(kind, Encoding.UTF8.GetBytes(text), Outcome.Error, code);

    private static Case Garbage(Random random)
    {
        // Never starts with '{', '[', a quote or white space, so it can never be the object a message must be.
        const string First = "abcxyz0123456789-+.:;!@#$%^&*()<>?/\\|~`";
        const string Rest = First + "{}[]\" \t\r\n,";
        var text = new StringBuilder().Append(First[random.Next(First.Length)]);
        var length = random.Next(0, 200);
        for (var i = 0; i < length; i++)
        {
            text.Append(Rest[random.Next(Rest.Length)]);
        }

        return Bad("garbage", text.ToString(), "invalid_message");
    }

    private static Case RandomBytes(Random random)
    {
        var bytes = new byte[random.Next(1, 300)];
        random.NextBytes(bytes);
        bytes[0] = 0x01; // a control character: never JSON
        return new Case("random_bytes", bytes, Outcome.Error, "invalid_message");
    }

    private static Case Truncated(Random random)
    {
        var whole = WellFormed(random).Bytes;
        var cut = whole.AsSpan(0, random.Next(0, whole.Length)).ToArray();
        return new Case("truncated", cut, Outcome.Error, "invalid_message");
    }

    private static Case DeepNesting(Random random)
    {
        // The reader allows 8 levels; the outer object is one.
        var depth = random.Next(8, 8000);
        var text = random.Next(3) switch
        {
            0 => $$"""{"action":"subscribe","instruments":[],"x":{{new string('[', depth)}}{{new string(']', depth)}}}""",
            1 => new string('[', depth) + new string(']', depth),
            _ => string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth),
        };
        return Bad("deep_nesting", text, "invalid_message");
    }

    private static Case HugeArray(Random random)
    {
        var count = random.Next(100, 5000);
        var element = Pick(random, ["1", "null", "true", "{}", "[]", "-0.5e10"]);
        return Bad("huge_array", $$"""{"action":"subscribe","instruments":[{{string.Join(',', Enumerable.Repeat(element, count))}}]}""", "invalid_message");
    }

    private static Case LongAction(Random random)
    {
        var action = new string((char)('a' + random.Next(26)), random.Next(1000, 17_000));
        return Bad("long_string", $$"""{"action":"{{action}}","instruments":[]}""", "unknown_action");
    }

    private static Case InvalidUtf8InString(Random random)
    {
        var bytes = Encoding.UTF8.GetBytes("""{"action":"subscribe","instruments":["NSE_EQ|XX"]}""").ToList();
        byte[][] invalid = [[0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF8, 0x88, 0x80, 0x80, 0x80]];
        bytes.InsertRange(46, invalid[random.Next(invalid.Length)]);
        return new Case("invalid_utf8", [.. bytes], Outcome.InvalidUtf8);
    }

    /// <summary>Well-formed subscribe or unsubscribe of instruments that do not exist, with unknown fields of every shape.</summary>
    private static Case WellFormed(Random random)
    {
        var keys = Enumerable.Range(0, random.Next(0, 8)).Select(_ => Pick(random,
        [
            "NSE_EQ|NOPE", "FUZZ|" + random.Next(), "", " ", "nse_eq|ine002a01018", "NSE_EQ|INE002A01018 ", "\u0000", "😀|🚀",
            new string('k', random.Next(1, 3000)), "NSE_EQ|INE002A01018\\u0000",
        ])).ToArray();
        var extra = Pick(random, ["", ",\"request_id\":7", ",\"x\":{\"a\":[1,{\"b\":null}]}", ",\"n\":1e308", ",\"pad\":\"" + new string(' ', random.Next(0, 5000)) + "\""]);
        var message = new Dictionary<string, object>
        {
            ["action"] = random.Next(2) == 0 ? "subscribe" : "unsubscribe",
            ["instruments"] = keys,
        };
        var json = JsonSerializer.Serialize(message);
        var text = random.Next(2) == 0 ? json[..^1] + extra + "}" : "{" + extra.TrimStart(',') + (extra.Length > 0 ? "," : "") + json[1..];
        return new Case("well_formed", Encoding.UTF8.GetBytes(text), Outcome.Change, HasInstruments: keys.Length > 0);
    }

    private static string Pick(Random random, string[] choices) => choices[random.Next(choices.Length)];

    private static string Preview(byte[] bytes) =>
        bytes.Length <= 120 ? Convert.ToHexString(bytes) : $"{Convert.ToHexString(bytes.AsSpan(0, 60))}... ({bytes.Length} bytes)";

    /// <summary>Frames that ClientWebSocket will not send: control frames mid-message, broken headers, unmasked data.</summary>
    private static async Task<int> RawFramesAsync(TestDaemon daemon)
    {
        var valid = Encoding.UTF8.GetBytes("""{"action":"subscribe","instruments":[]}""");
        var scenarios = new (string Name, Func<RawWebSocket, Task> Send, int ExpectedClose)[]
        {
            ("fragmented ping", c => c.SendFrameAsync(RawWebSocket.Ping, "hi"u8.ToArray(), fin: false), 1002),
            ("oversized ping", c => c.SendFrameAsync(RawWebSocket.Ping, new byte[126]), 1002),
            ("close with a 1-byte body", c => c.SendFrameAsync(RawWebSocket.Close, new byte[] { 3 }), 1002),
            ("reserved opcode", c => c.SendFrameAsync(0x3, valid), 1002),
            ("RSV1 without an extension", c => c.SendFrameAsync(RawWebSocket.Text, valid, rsv: 4), 1002),
            ("unmasked client frame", c => c.SendFrameAsync(RawWebSocket.Text, valid, masked: false), 1002),
            ("continuation without a start", c => c.SendFrameAsync(RawWebSocket.Continuation, valid), 1002),
            ("new text frame inside a fragmented one", async c =>
            {
                await c.SendFrameAsync(RawWebSocket.Text, valid.AsMemory(0, 10), fin: false);
                await c.SendFrameAsync(RawWebSocket.Text, valid);
            }, 1002),
            ("invalid close code", c => c.SendFrameAsync(RawWebSocket.Close, new byte[] { 0x03, 0xE7 }), 1002),
            ("invalid UTF-8 across fragments", async c =>
            {
                await c.SendFrameAsync(RawWebSocket.Text, new byte[] { (byte)'"', 0xE2 }, fin: false);
                await c.SendFrameAsync(RawWebSocket.Continuation, new byte[] { 0x28, (byte)'"' });
            }, 1007),
            ("binary frame", c => c.SendFrameAsync(RawWebSocket.Binary, valid), 1003),
            ("frame declaring a megabyte", c => c.SendFrameAsync(RawWebSocket.Text, new byte[20_000], declaredLength: 1_000_000), 1009),
        };

        var connections = 0;
        for (var round = 0; round < 5; round++)
        {
            foreach (var (name, send, expected) in scenarios)
            {
                using var client = await RawWebSocket.ConnectAsync(daemon.BaseUri);
                connections++;
                await send(client);
                var ending = await client.ReadUntilClosedAsync(TestClient.Timeout);
                // The daemon's own closes (1003, 1009) always come with their code; for protocol errors the
                // WebSocket layer fails the connection and MAY send the code first (RFC 6455 7.1.7).
                Assert.That(ending.CloseCode, expected is 1002 or 1007 ? Is.EqualTo(expected).Or.Null : Is.EqualTo(expected), name);
            }

            // Control frames at legal but odd times: a ping and a pong inside a fragmented message are answered
            // and the message still counts.
            using var odd = await RawWebSocket.ConnectAsync(daemon.BaseUri);
            connections++;
            await odd.SendFrameAsync(RawWebSocket.Pong, "unsolicited"u8.ToArray());
            await odd.SendFrameAsync(RawWebSocket.Text, valid.AsMemory(0, 15), fin: false);
            await odd.SendFrameAsync(RawWebSocket.Ping, "mid-message"u8.ToArray());
            await odd.SendFrameAsync(RawWebSocket.Continuation, valid.AsMemory(15), fin: true);
            using var timeout = new CancellationTokenSource(TestClient.Timeout);
            var sawPong = false;
            var sawAck = false;
            while (!(sawPong && sawAck) && await odd.ReadFrameAsync(timeout.Token) is { } frame)
            {
                sawPong |= frame.Opcode == RawWebSocket.Pong && frame.Text == "mid-message";
                sawAck |= frame.Opcode == RawWebSocket.Text && frame.Text.Contains("\"type\":\"subscribed\"", StringComparison.Ordinal);
            }

            Assert.That(sawPong && sawAck, Is.True, "ping and pong inside a fragmented message");
            await odd.SendFrameAsync(RawWebSocket.Close, new byte[] { 0x03, 0xE8 });
            Assert.That((await odd.ReadUntilClosedAsync(TestClient.Timeout)).CloseCode, Is.EqualTo(1000));
        }

        return connections;
    }
}
