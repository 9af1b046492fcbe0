using System.Net;
using System.Net.Sockets;
using PriceDaemon.Sockets.Send;

namespace PriceDaemon.Tests.Sockets;

/// <summary>
/// The direct path's sink on a real loopback connection with small kernel buffers: a write is a synchronous send on a
/// non-blocking socket, and what the kernel cannot take at once continues asynchronously, never blocking the caller,
/// with the bytes on the wire whole and in order.
/// </summary>
public sealed class SocketFrameSinkTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Test]
    public async Task AWriteTheKernelCannotTakeAtOnce_ContinuesAsynchronously_WholeAndInOrder_BeforeTheNextWrite()
    {
        using var pair = await Pair.ConnectAsync();
        var sink = new SocketFrameSink(pair.Server);
        Assert.That(pair.Server.Blocking, Is.False, "the sink sends synchronously only on a non-blocking socket");

        var small = Pattern(100, seed: 7);
        var started = sink.WriteAsync(small);
        Assert.That(started.IsCompletedSuccessfully, Is.True, "a write the kernel has room for completes inline");

        // Far more than the two small buffers hold while the peer does not read: the call must still return at once.
        var large = Pattern(4 * 1024 * 1024, seed: 11);
        var pending = await StartElsewhere(() => sink.WriteAsync(large).AsTask()).WaitAsync(Limit);
        Assert.That(pending.IsCompleted, Is.False, "the kernel took part of it at most; the rest waits for room");

        var read = pair.ReadAsync(small.Length + large.Length + 300);
        await pending.WaitAsync(Limit);
        var last = Pattern(300, seed: 13);
        await sink.WriteAsync(last).AsTask().WaitAsync(Limit);

        Assert.That((await read.WaitAsync(Limit)).SequenceEqual(small.Concat(large).Concat(last)), Is.True, "every byte once, in order");
    }

    [Test]
    public async Task ASocketSetBackToBlocking_IsStillWrittenWithoutBlockingTheCaller()
    {
        using var pair = await Pair.ConnectAsync();
        var sink = new SocketFrameSink(pair.Server);
        pair.Server.Blocking = true;

        var large = Pattern(4 * 1024 * 1024, seed: 17);
        var pending = await StartElsewhere(() => sink.WriteAsync(large).AsTask()).WaitAsync(Limit);
        Assert.That(pending.IsCompleted, Is.False, "a blocking send would have waited here for the peer to read");

        var read = pair.ReadAsync(large.Length);
        await pending.WaitAsync(Limit);
        Assert.That((await read.WaitAsync(Limit)).SequenceEqual(large), Is.True);
    }

    [Test]
    public async Task AWriteToAClosedSocket_FailsWithAnIOException()
    {
        using var pair = await Pair.ConnectAsync();
        var sink = new SocketFrameSink(pair.Server);
        pair.Server.Dispose();

        Assert.ThrowsAsync<IOException>(async () => await sink.WriteAsync(Pattern(10, seed: 1)));
    }

    /// <summary>Starts the call on a pool thread: a call that blocked would fail the test by its time limit rather than hang it.</summary>
    private static Task<Task> StartElsewhere(Func<Task> call) =>
        Task.Factory.StartNew(call, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Default);

    private static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            bytes[i] = (byte)((i * 31) + seed);
        }

        return bytes;
    }

    /// <summary>A connected loopback pair whose buffers fill after kilobytes (the kernel's autotuning is off for both).</summary>
    private sealed class Pair : IDisposable
    {
        private Pair(Socket server, Socket client)
        {
            Server = server;
            Client = client;
        }

        public Socket Server { get; }

        public Socket Client { get; }

        public static async Task<Pair> ConnectAsync()
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.SendBufferSize = 4096; // inherited by the accepted socket
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen();
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
            await client.ConnectAsync(listener.LocalEndPoint!);
            var server = await listener.AcceptAsync();
            return new Pair(server, client);
        }

        /// <summary>Reads exactly <paramref name="length"/> bytes, a little at a time.</summary>
        public async Task<byte[]> ReadAsync(int length)
        {
            var received = new byte[length];
            var at = 0;
            while (at < length)
            {
                var n = await Client.ReceiveAsync(received.AsMemory(at, Math.Min(8192, length - at)));
                if (n == 0)
                {
                    throw new EndOfStreamException($"{at} of {length} bytes");
                }

                at += n;
            }

            return received;
        }

        public void Dispose()
        {
            Server.Dispose();
            Client.Dispose();
        }
    }
}
