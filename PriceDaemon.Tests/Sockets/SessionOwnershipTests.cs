using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Feeds;
using PriceDaemon.Pipeline;
using PriceDaemon.Security;
using PriceDaemon.Sockets;
using PriceDaemon.Sockets.Send;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Sockets;

/// <summary>
/// The receive loop owns a session's subscriptions to the end, even when it outlives the session: a
/// connection whose read does not end on abort must still give back everything when the read finally ends.
/// </summary>
public sealed class SessionOwnershipTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";

    [Test]
    public async Task AReceiveLoopThatOutlivesItsSession_StillGivesBackItsSubscriptions_WhenItsReadEnds()
    {
        var interest = new CountingInterest();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var daemon = await TestDaemon.StartAsync(time: time, configure: s => s.AddSingleton<IUpstreamInterest>(interest));
        var services = daemon.Services.GetRequiredService<SessionServices>();
        var index = daemon.Services.GetRequiredService<SubscriptionIndex>();
        var user = new ClientUser("connection:test", daemon.Services.GetRequiredService<UserLimits>());

        // A client that subscribes, then goes silent on a connection whose read ignores the abort.
        var input = new StuckStream(MaskedText("{\"action\":\"subscribe\",\"instruments\":[\"" + Reliance + "\"]}"));
        var sender = new SocketSender(1, "test", new DiscardingSink(), static () => { }, services);
        var socket = WebSocket.CreateFromStream(sender.CreateStream(input, static () => { }), new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = TimeSpan.Zero });
        var session = new PriceSession(new WebSocketClientSocket(socket), sender, services, new ClientIdentity(user, null, null, null, null));
        var run = session.RunAsync();
        await Eventually.TrueAsync(() => interest.Held == 1 && user.Subscriptions == 1, () => $"upstream {interest.Held}, user {user.Subscriptions}");

        // Closed by us: the close frame goes out, the peer never answers, the abort does not end the read.
        session.BeginClose(WebSocketCloseStatus.NormalClosure, "");
        await Eventually.TrueAsync(
            () =>
            {
                time.Advance(TimeSpan.FromSeconds(services.Limits.CloseTimeoutSeconds));
                return run.IsCompleted;
            },
            () => "the session gives up on the stuck receive loop");
        Assert.That(index.Get(daemon.Id(Reliance)), Has.Length.EqualTo(1), "still the receive loop's until its read ends");

        input.Fail(new IOException("connection reset"));
        // Upstream interest back, out of the index (fan-out offers it nothing), the user's slots back.
        await Eventually.TrueAsync(
            () => interest.Held == 0 && index.Get(daemon.Id(Reliance)).Length == 0 && user.Subscriptions == 0,
            () => $"upstream {interest.Held}, index {index.Get(daemon.Id(Reliance)).Length}, user {user.Subscriptions}");
        socket.Dispose();
    }

    private static byte[] MaskedText(string text)
    {
        var payload = Encoding.UTF8.GetBytes(text);
        var mask = RandomNumberGenerator.GetBytes(4);
        var frame = new byte[2 + 4 + payload.Length];
        frame[0] = 0x81;
        frame[1] = (byte)(0x80 | payload.Length); // under 126 bytes
        mask.CopyTo(frame, 2);
        for (var i = 0; i < payload.Length; i++)
        {
            frame[6 + i] = (byte)(payload[i] ^ mask[i % 4]);
        }

        return frame;
    }

    /// <summary>Counts what sessions hold upstream, as Upstox's bookkeeping would.</summary>
    private sealed class CountingInterest : IUpstreamInterest
    {
        private int _held;

        public int Held => Volatile.Read(ref _held);

        public bool Acquire(int instrumentId)
        {
            Interlocked.Increment(ref _held);
            return true;
        }

        public void Release(int instrumentId) => Interlocked.Decrement(ref _held);
    }

    private sealed class DiscardingSink : IFrameSink
    {
        public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes) => ValueTask.CompletedTask;

        public void Cancel()
        {
        }
    }

    /// <summary>Gives its bytes, then a read that neither cancellation nor disposal ends: only <see cref="Fail"/> does.</summary>
    private sealed class StuckStream(byte[] first) : Stream
    {
        private readonly TaskCompletionSource<int> _stuck = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public void Fail(Exception error) => _stuck.TrySetException(error);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position < first.Length)
            {
                var count = Math.Min(buffer.Length, first.Length - _position);
                first.AsSpan(_position, count).CopyTo(buffer.Span);
                _position += count;
                return ValueTask.FromResult(count);
            }

            return new ValueTask<int>(_stuck.Task);
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
