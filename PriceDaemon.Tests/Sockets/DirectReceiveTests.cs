using System.Buffers.Binary;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using PriceDaemon.Pipeline;
using PriceDaemon.Security;
using PriceDaemon.Sockets;
using PriceDaemon.Tests.Security;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Sockets;

/// <summary>
/// A raw client on a real socket against the daemon's direct path, where client frames are read from the connection's
/// pipe without a WebSocket: a fragmented subscribe with a ping inside it, a ping on its own, and the close handshake.
/// </summary>
public sealed class DirectReceiveTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";

    [Test]
    public async Task AFragmentedSubscribeWithAPingInside_IsAnsweredWithThePongAndTheAck_ThenACloseIsEchoed()
    {
        await using var daemon = await TestDaemon.StartAsync();
        var metrics = daemon.Services.GetRequiredService<PipelineMetrics>();
        var direct = Volatile.Read(ref metrics.HandshakesDirect);
        using var client = await RawWebSocket.ConnectAsync(daemon.BaseUri);
        using (var first = new CancellationTokenSource(TestClient.Timeout))
        {
            // The status frame every session starts with: the handshake is counted before the session runs.
            Assert.That((await client.ReadFrameAsync(first.Token))?.Text, Does.Contain("\"type\":\"status\""));
        }

        Assert.That(Volatile.Read(ref metrics.HandshakesDirect), Is.EqualTo(direct + 1), "the direct path took the socket");

        var message = Encoding.UTF8.GetBytes($$"""{"action":"subscribe","instruments":["{{Reliance}}"]}""");
        await client.SendFrameAsync(RawWebSocket.Text, message.AsMemory(0, 7), fin: false);
        await client.SendFrameAsync(RawWebSocket.Ping, "inside"u8.ToArray());
        await client.SendFrameAsync(RawWebSocket.Continuation, message.AsMemory(7, 10), fin: false);
        await client.SendFrameAsync(RawWebSocket.Pong, "unasked"u8.ToArray());
        await client.SendFrameAsync(RawWebSocket.Continuation, message.AsMemory(17));
        await client.SendFrameAsync(RawWebSocket.Ping, "alone"u8.ToArray());

        var pongs = new List<string>();
        string? ack = null;
        using (var timeout = new CancellationTokenSource(TestClient.Timeout))
        {
            while ((pongs.Count < 2 || ack is null) && await client.ReadFrameAsync(timeout.Token) is { } frame)
            {
                if (frame.Opcode == RawWebSocket.Pong)
                {
                    pongs.Add(frame.Text);
                }
                else if (frame.Opcode == RawWebSocket.Text && frame.Text.Contains("\"type\":\"subscribed\"", StringComparison.Ordinal))
                {
                    ack = frame.Text;
                }
            }
        }

        Assert.That(pongs, Is.EqualTo(new[] { "inside", "alone" }), "each ping answered with its own payload, in order");
        Assert.That(ack, Does.Contain(Reliance), "the fragments made one subscribe");

        var body = new byte[2 + 4];
        BinaryPrimitives.WriteUInt16BigEndian(body, 4001);
        "done"u8.CopyTo(body.AsSpan(2));
        await client.SendFrameAsync(RawWebSocket.Close, body);
        var ending = await client.ReadUntilClosedAsync(TestClient.Timeout);
        Assert.That(ending.CloseCode, Is.EqualTo(4001), "the peer's close code comes back");
    }

    [Test]
    public async Task PingsAndPongsBetweenMessages_AreAnsweredWhileIdle_AndTheSocketStillTakesMessages()
    {
        await using var daemon = await TestDaemon.StartAsync();
        using var client = await RawWebSocket.ConnectAsync(daemon.BaseUri);
        using var timeout = new CancellationTokenSource(TestClient.Timeout);
        Assert.That((await client.ReadFrameAsync(timeout.Token))?.Text, Does.Contain("\"type\":\"status\""));

        // Between messages, where an idle socket waits: a pong nobody asked for, two pings in one write each, another pong.
        await client.SendFrameAsync(RawWebSocket.Pong, "unasked"u8.ToArray());
        await client.SendFrameAsync(RawWebSocket.Ping, "one"u8.ToArray());
        await client.SendFrameAsync(RawWebSocket.Ping, "two"u8.ToArray());
        await client.SendFrameAsync(RawWebSocket.Pong, "again"u8.ToArray());
        Assert.That(await NextPongAsync(client, timeout.Token), Is.EqualTo("one"));
        Assert.That(await NextPongAsync(client, timeout.Token), Is.EqualTo("two"));

        // The wait goes on after them: the next message is read whole and answered.
        await client.SendFrameAsync(RawWebSocket.Text, Encoding.UTF8.GetBytes($$"""{"action":"subscribe","instruments":["{{Reliance}}"]}"""));
        string? ack = null;
        while (ack is null && await client.ReadFrameAsync(timeout.Token) is { } frame)
        {
            ack = frame.Opcode == RawWebSocket.Text && frame.Text.Contains("\"type\":\"subscribed\"", StringComparison.Ordinal) ? frame.Text : null;
        }

        Assert.That(ack, Does.Contain(Reliance));
        await client.SendFrameAsync(RawWebSocket.Ping, "after"u8.ToArray());
        Assert.That(await NextPongAsync(client, timeout.Token), Is.EqualTo("after"), "and idle again, pings still answered");

        await client.SendFrameAsync(RawWebSocket.Close, new byte[] { 0x03, 0xE8 });
        Assert.That((await client.ReadUntilClosedAsync(TestClient.Timeout)).CloseCode, Is.EqualTo(1000));
    }

    /// <summary>The payload of the next pong; price and other text frames before it are skipped.</summary>
    private static async Task<string?> NextPongAsync(RawWebSocket client, CancellationToken cancellationToken)
    {
        while (await client.ReadFrameAsync(cancellationToken) is { } frame)
        {
            if (frame.Opcode == RawWebSocket.Pong)
            {
                return frame.Text;
            }
        }

        return null;
    }

    [Test]
    public async Task AServerClose_ThatThePeerNeverAnswers_IsCutAfterTheCloseTimeout_AndTheSessionEnds()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Limits:CloseTimeoutSeconds"] = "1" });
        var registry = daemon.Services.GetRequiredService<SessionRegistry>();
        var limits = daemon.Services.GetRequiredService<UserLimits>();
        using var client = await RawWebSocket.ConnectAsync(daemon.BaseUri);
        using (var first = new CancellationTokenSource(TestClient.Timeout))
        {
            Assert.That((await client.ReadFrameAsync(first.Token))?.Text, Does.Contain("\"type\":\"status\""));
        }

        Assert.That(limits.Connections, Is.EqualTo(1));
        registry.Sessions.Single().BeginClose(WebSocketCloseStatus.NormalClosure, "bye");

        // The peer reads our close frame and never answers it: the session gives it the close timeout, then cuts it.
        var ending = await client.ReadUntilClosedAsync(TestClient.Timeout);
        Assert.That(ending.CloseCode, Is.EqualTo((int)WebSocketCloseStatus.NormalClosure), "our close frame went out first");
        using (var rest = new CancellationTokenSource(TestClient.Timeout))
        {
            Assert.That(await ReadToEndAsync(client, rest.Token), Is.True, "the connection was cut: the read ended, not the wait");
        }

        await Eventually.TrueAsync(() => registry.Count == 0 && limits.Connections == 0, () => $"sessions {registry.Count}, connections {limits.Connections}");
    }

    /// <summary>True once the server ended the connection (end of stream or reset); false if the wait ran out first.</summary>
    private static async Task<bool> ReadToEndAsync(RawWebSocket client, CancellationToken cancellationToken)
    {
        try
        {
            while (await client.ReadFrameAsync(cancellationToken) is not null)
            {
            }

            return true;
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
