using System.Net.WebSockets;
using PriceDaemon.Sockets;

namespace PriceDaemon.Tests.Sockets;

public sealed class BatchingStreamTests
{
    [Test]
    public async Task AppendedFrames_AreWrittenInOneWrite_AndReadBackByAStandardWebSocket()
    {
        var sink = new CountingStream();
        var stream = new BatchingStream(sink);
        // One length of each header form: 7-bit, 16-bit and 64-bit (RFC 6455 §5.2).
        byte[][] payloads = [Filled(5, 'a'), Filled(300, 'b'), Filled(70_000, 'c')];

        stream.BeginBatch();
        foreach (var payload in payloads)
        {
            stream.AppendTextFrame(payload);
        }

        // A frame the WebSocket writes itself inside a batch goes out whole, after ours, in the same write.
        await stream.WriteAsync(new byte[] { 0x8A, 0x00 }); // an empty pong
        await stream.FlushBatchAsync(CancellationToken.None);
        Assert.That(sink.Writes, Is.EqualTo(1));

        sink.Position = 0;
        using var client = WebSocket.CreateFromStream(sink, new WebSocketCreationOptions { IsServer = false });
        var buffer = new byte[100_000];
        foreach (var payload in payloads)
        {
            var count = 0;
            ValueWebSocketReceiveResult result;
            do
            {
                result = await client.ReceiveAsync(buffer.AsMemory(count), CancellationToken.None);
                count += result.Count;
            }
            while (!result.EndOfMessage);

            Assert.That(result.MessageType, Is.EqualTo(WebSocketMessageType.Text));
            Assert.That(buffer.AsSpan(0, count).SequenceEqual(payload), Is.True);
        }
    }

    [Test]
    public async Task WritesOutsideABatch_GoStraightThrough()
    {
        var sink = new CountingStream();
        var stream = new BatchingStream(sink);
        await stream.WriteAsync(new byte[] { 0x89, 0x00 });
        await stream.WriteAsync(new byte[] { 0x89, 0x00 });
        Assert.That((sink.Writes, sink.Length), Is.EqualTo((2, 4L)));
    }

    private static byte[] Filled(int length, char c) => Enumerable.Repeat((byte)c, length).ToArray();

    private sealed class CountingStream : MemoryStream
    {
        public int Writes { get; private set; }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Writes++;
            return base.WriteAsync(buffer, cancellationToken);
        }
    }
}
