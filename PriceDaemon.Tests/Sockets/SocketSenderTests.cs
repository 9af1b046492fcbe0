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
/// One socket's sender on its own, over a sink that records every write: the schedule/release protocol
/// (work published from any thread is written, passes never overlap, a pending write holds the sender), the
/// order of what goes out, and the WebSocket's own frames on the same path.
/// </summary>
public sealed class SocketSenderTests
{
    private const int Instruments = 8;

    [Test]
    public async Task WorkFromManyThreads_IsAllWritten_InOrder_WithNoOverlappingWrites()
    {
        using var fixture = new Fixture(sendThreads: 2);
        fixture.Sink.PendEvery = 7; // every seventh write completes later, on another thread
        var subscriptions = Enumerable.Range(0, Instruments).Select(fixture.Sender.Add).ToArray();
        const int ControlPerProducer = 80; // 240 in all: under the control queue cap (256) even if none were written yet
        const int PricesPerInstrument = 2_000;

        // Control frames from three threads race prices from a fan-out thread and the pump's releases.
        var producers = Enumerable.Range(0, 3).Select(p => Task.Run(() =>
        {
            for (var i = 0; i < ControlPerProducer; i++)
            {
                fixture.Sender.EnqueueControl(Encoding.UTF8.GetBytes($"c{p}:{i}"));
            }
        })).ToList();
        producers.Add(Task.Run(() => fixture.EmitAndOffer(subscriptions, PricesPerInstrument)));
        await Task.WhenAll(producers);

        await Eventually.TrueAsync(
            () => fixture.Sink.Frames.Count(f => f.StartsWith('c')) == 3 * ControlPerProducer
                && subscriptions.All(s => fixture.Sink.LastSeq(s.InstrumentId) == PricesPerInstrument),
            () => $"{fixture.Sink.Frames.Count} frames written, queued {fixture.Sender.QueuedCount}");

        AssertWrittenInOrder(fixture, subscriptions, 'c', ControlPerProducer);
    }

    [Test]
    public async Task APendingWrite_HoldsTheSender_AndWhatCameMeanwhile_GoesInOneWriteAfterIt()
    {
        using var fixture = new Fixture(sendThreads: 1);
        var release = fixture.Sink.HoldNextWrite();
        fixture.Sender.EnqueueControl("first"u8.ToArray());
        await Eventually.TrueAsync(() => fixture.Sink.Started == 1, () => $"{fixture.Sink.Started} writes started");

        fixture.Sender.EnqueueControl("second"u8.ToArray());
        fixture.Sender.EnqueueControl("third"u8.ToArray());
        await Eventually.TrueAsync(() => fixture.Sender.IsStalled(long.MaxValue, 0), () => "the pending write is being timed");
        fixture.Time.Advance(TimeSpan.FromSeconds(5));
        Assert.That(fixture.Sender.IsStalled(fixture.Time.GetTimestamp(), fixture.Time.TimestampFrequency), Is.True, "a write pending for 5 s is a stall");
        Assert.That(fixture.Sink.Started, Is.EqualTo(1), "no second write while the first is pending");

        release();
        await Eventually.TrueAsync(() => fixture.Sink.Frames.Count == 3, () => $"{fixture.Sink.Frames.Count} frames");
        Assert.That(fixture.Sink.Frames, Is.EqualTo(new[] { "first", "second", "third" }));
        Assert.That(fixture.Sink.Writes, Is.EqualTo(2), "the two frames queued meanwhile went in one write");
        Assert.That(fixture.Sender.IsStalled(fixture.Time.GetTimestamp(), fixture.Time.TimestampFrequency), Is.False);
    }

    [Test]
    public async Task AFrameTheWebSocketWritesWhileAPassBuilds_GoesOutWhole_InThatPassesWrite()
    {
        using var fixture = new Fixture(sendThreads: 1);
        var stream = fixture.Sender.CreateStream(Stream.Null, static () => { });
        var release = fixture.Sink.HoldNextWrite();
        var ping = stream.WriteAsync(new byte[] { 0x89, 0x00 }).AsTask(); // goes straight to the sink, and is held there
        await Eventually.TrueAsync(() => fixture.Sink.Started == 1, () => "the ping's write");

        fixture.Sender.EnqueueControl("ack"u8.ToArray()); // the pass takes it, then waits for the ping's write
        await Eventually.TrueAsync(() => fixture.Sender.QueuedCount == 0, () => "the pass took the frame");
        await stream.WriteAsync(new byte[] { 0x8A, 0x00 }); // a pong while the pass waits: kept aside
        release();
        await ping;

        await Eventually.TrueAsync(() => fixture.Sink.Writes == 2, () => $"{fixture.Sink.Writes} writes");
        Assert.That(fixture.Sink.Opcodes, Is.EqualTo(new[] { 0x9, 0x1, 0xA }), "ping; then the ack and the pong in one write");
        Assert.That(fixture.Sink.Overlaps, Is.Zero);
    }

    [Test]
    public async Task OwnFramesFromManyThreads_RaceThePassesForTheWriteOrder_AndEachGoesOutWholeOnceInItsWritersOrder()
    {
        using var fixture = new Fixture(sendThreads: 1);
        fixture.Sink.PendEvery = 5; // pending writes make the others wait for their turn
        var subscriptions = Enumerable.Range(0, Instruments).Select(fixture.Sender.Add).ToArray();
        var stream = fixture.Sender.CreateStream(Stream.Null, static () => { });
        const int PerWriter = 300;
        const int PricesPerInstrument = 500;

        // Three threads write frames of their own (as the WebSocket writes pongs and the close) while passes write prices.
        var writers = Enumerable.Range(0, 3).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < PerWriter; i++)
            {
                var payload = Encoding.UTF8.GetBytes($"w{w}:{i}");
                await stream.WriteAsync((byte[])[0x81, (byte)payload.Length, .. payload]);
            }
        })).ToList();
        writers.Add(Task.Run(() => fixture.EmitAndOffer(subscriptions, PricesPerInstrument)));
        await Task.WhenAll(writers);

        await Eventually.TrueAsync(
            () => fixture.Sink.Frames.Count == 3 * PerWriter && subscriptions.All(s => fixture.Sink.LastSeq(s.InstrumentId) == PricesPerInstrument),
            () => $"{fixture.Sink.Frames.Count} own frames written, queued {fixture.Sender.QueuedCount}");
        AssertWrittenInOrder(fixture, subscriptions, 'w', PerWriter);
    }

    [Test]
    public async Task FramesOfEveryHeaderForm_AreReadBackByAStandardWebSocket()
    {
        using var fixture = new Fixture(sendThreads: 1);
        // One length of each header form: 7-bit, 16-bit and 64-bit (RFC 6455 §5.2); the last is larger than a batch.
        byte[][] payloads = [Filled(5, 'a'), Filled(300, 'b'), Filled(70_000, 'c')];
        var release = fixture.Sink.HoldNextWrite();
        foreach (var payload in payloads)
        {
            fixture.Sender.EnqueueControl(payload);
        }

        release();
        await Eventually.TrueAsync(() => fixture.Sink.Frames.Count == 3, () => $"{fixture.Sink.Frames.Count} frames");
        using var client = WebSocket.CreateFromStream(new MemoryStream(fixture.Sink.Raw), new WebSocketCreationOptions { IsServer = false });
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
            Assert.That(buffer.AsSpan(0, count).SequenceEqual(payload), Is.True, $"a {payload.Length}-byte frame");
        }
    }

    [Test]
    public async Task Close_SendsTheControlFramesQueuedBeforeIt_ThenTheCloseFrame_AndNoPrices()
    {
        using var fixture = new Fixture(sendThreads: 1);
        var input = new Pipe();
        var socket = WebSocket.CreateFromStream(
            fixture.Sender.CreateStream(input.Reader.AsStream(), static () => { }),
            new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = TimeSpan.Zero });
        fixture.Sender.Attach(new WebSocketClientSocket(socket));
        var subscription = fixture.Sender.Add(0);
        var release = fixture.Sink.HoldNextWrite();
        fixture.Sender.EnqueueControl("status"u8.ToArray());
        await Eventually.TrueAsync(() => fixture.Sink.Started == 1, () => "the first write");

        subscription.Offer(fixture.Emit(0, 1)); // queued behind the pending write, then dropped by the close
        fixture.Sender.EnqueueControl("error"u8.ToArray());
        fixture.Sender.BeginClose(WebSocketCloseStatus.PolicyViolation, "too many bad messages");
        fixture.Sender.EnqueueControl("late"u8.ToArray()); // after the close was asked for: still before the close frame
        release();

        await fixture.Sender.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(fixture.Sink.Opcodes[^1], Is.EqualTo(0x8), "the close frame is the last thing written");
        Assert.That(fixture.Sink.Frames, Is.EqualTo(new[] { "status", "error", "late" }), "every control frame, no price");
        Assert.That(fixture.Sink.CloseStatus, Is.EqualTo(1008));
        Assert.That(socket.State, Is.EqualTo(WebSocketState.CloseSent));
        socket.Dispose();
    }

    [Test]
    public async Task AServerStopClose_WritesThePricesAlreadyMarked_ThenTheCloseFrame()
    {
        using var fixture = new Fixture(sendThreads: 1);
        var socket = WebSocket.CreateFromStream(
            fixture.Sender.CreateStream(new Pipe().Reader.AsStream(), static () => { }),
            new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = TimeSpan.Zero });
        fixture.Sender.Attach(new WebSocketClientSocket(socket));
        var subscriptions = Enumerable.Range(0, 3).Select(fixture.Sender.Add).ToArray();
        var release = fixture.Sink.HoldNextWrite();
        fixture.Sender.EnqueueControl("status"u8.ToArray());
        await Eventually.TrueAsync(() => fixture.Sink.Started == 1, () => "the first write");

        foreach (var subscription in subscriptions)
        {
            subscription.Offer(fixture.Emit(subscription.InstrumentId, 7)); // the stop's last prices, fanned out
        }

        fixture.Sender.BeginClose(WebSocketCloseStatus.EndpointUnavailable, "server shutting down", pricesFirst: true);
        release();

        await fixture.Sender.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(subscriptions.Select(s => fixture.Sink.LastSeq(s.InstrumentId)), Is.All.EqualTo(7), "every marked price went out");
        Assert.That(fixture.Sink.Opcodes[^1], Is.EqualTo(0x8), "and the close frame after them");
        Assert.That(fixture.Sink.CloseStatus, Is.EqualTo(1001));
        socket.Dispose();
    }

    [Test]
    public async Task AFailedWrite_EndsTheSendSide_AndCutsTheConnection()
    {
        var aborted = 0;
        using var fixture = new Fixture(sendThreads: 1, abort: () => Interlocked.Increment(ref aborted));
        fixture.Sink.Fail = new IOException("connection reset by peer");
        fixture.Sender.EnqueueControl("status"u8.ToArray());

        await fixture.Sender.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(Volatile.Read(ref aborted), Is.EqualTo(1));
        Assert.That(fixture.Sender.IsClosing, Is.True);
        Assert.That(fixture.Metrics.SendErrors, Is.EqualTo(1));
    }

    [Test]
    public async Task ADownsampledSocket_GetsEachInstrumentOncePerInterval_TheNewestValueLast_AndControlFramesAtOnce()
    {
        using var fixture = new Fixture(sendThreads: 1, limits: new LimitsOptions
        {
            SlowConsumerWarnSeconds = 2, SlowConsumerIntervalMs = 1000, SlowConsumerRecoverSeconds = 3, SlowConsumerSeconds = 10,
        });
        var sender = fixture.Sender;
        var subscriptions = Enumerable.Range(0, 2).Select(sender.Add).ToArray();
        var release = fixture.Sink.HoldNextWrite();
        subscriptions[0].Offer(fixture.Emit(0, 1));
        await Eventually.TrueAsync(() => sender.IsStalled(long.MaxValue, 0), () => "the first write is pending");

        // Behind (a write pending) at every look for the warn time.
        for (var second = 0; second <= 2; second++)
        {
            sender.CheckFlow(fixture.Time.GetTimestamp());
            Assert.That(sender.IsDownsampled, Is.EqualTo(second == 2), $"look {second}");
            fixture.Time.Advance(TimeSpan.FromSeconds(second < 2 ? 1 : 0));
        }

        for (var seq = 2; seq <= 5; seq++)
        {
            subscriptions[0].Offer(fixture.Emit(0, seq));
        }

        release();
        await Eventually.TrueAsync(() => fixture.Sink.LastSeq(0) == 5, () => $"instrument 0 at {fixture.Sink.LastSeq(0)}: {string.Join(" / ", fixture.Sink.Frames)}, queued {sender.QueuedCount}, closing {sender.IsClosing}, stalled {sender.IsStalled(long.MaxValue, 0)}, errors {fixture.Metrics.SendErrors}");
        Assert.That(fixture.Sink.Frames.Single(f => f.Contains("\"type\":\"warning\"", StringComparison.Ordinal)), Does.Contain("\"code\":\"slow_consumer\"").And.Contain("\"interval_ms\":1000"));

        // Within the interval prices wait, conflating; a control frame (a notification) does not.
        subscriptions[0].Offer(fixture.Emit(0, 6));
        subscriptions[1].Offer(fixture.Emit(1, 1));
        subscriptions[0].Offer(fixture.Emit(0, 7));
        sender.EnqueueControl("notification"u8.ToArray());
        await Eventually.TrueAsync(() => fixture.Sink.Frames.Contains("notification"), () => "the notification was held");
        Assert.That(fixture.Sink.LastSeq(0), Is.EqualTo(5), "a second price within the interval");
        Assert.That(fixture.Sink.Seqs(1), Is.Empty);

        // The interval is over: the round goes out by itself, the newest of each instrument, with no tick to prompt it.
        fixture.Time.Advance(TimeSpan.FromSeconds(1));
        await Eventually.TrueAsync(() => fixture.Sink.LastSeq(0) == 7 && fixture.Sink.LastSeq(1) == 1, () => $"instruments at {fixture.Sink.LastSeq(0)}, {fixture.Sink.LastSeq(1)}");
        Assert.That(fixture.Sink.Seqs(0), Is.EqualTo(new long[] { 1, 5, 7 }), "once per interval, never an older one after a newer one");

        // Keeping up (no write pending) for the recover time: full rate again, and told so.
        for (var second = 0; second < 10 && sender.IsDownsampled; second++)
        {
            fixture.Time.Advance(TimeSpan.FromSeconds(1));
            sender.CheckFlow(fixture.Time.GetTimestamp());
        }

        Assert.That(sender.IsDownsampled, Is.False, "never recovered");
        await Eventually.TrueAsync(() => fixture.Sink.Frames.Any(f => f.Contains("\"type\":\"warning_cleared\"", StringComparison.Ordinal)), () => "no warning_cleared frame");
        subscriptions[0].Offer(fixture.Emit(0, 8));
        subscriptions[0].Offer(fixture.Emit(0, 9)); // each written as it comes, the clock standing still
        await Eventually.TrueAsync(() => fixture.Sink.LastSeq(0) == 9, () => $"instrument 0 at {fixture.Sink.LastSeq(0)}");
    }

    [Test]
    public async Task ALookRunByTheClockReadThatEndsAPendingWrite_Ends_AndSoDoesThePass()
    {
        // A FakeTimeProvider runs a due timer on whichever thread reads the clock first: here the pass that ends the
        // pending write, as it reads the write's end. The sweeper's look (a timer, as in SessionRegistry) then runs
        // inside that pass and must not wait for it.
        using var fixture = new Fixture(sendThreads: 1);
        var sender = fixture.Sender;
        var release = fixture.Sink.HoldNextWrite();
        sender.EnqueueControl("first"u8.ToArray());
        await Eventually.TrueAsync(() => sender.IsStalled(long.MaxValue, 0), () => "the write is pending");

        var looked = 0;
        using var sweep = fixture.Time.CreateTimer(
            _ =>
            {
                sender.CheckFlow(fixture.Time.GetTimestamp());
                Volatile.Write(ref looked, 1);
            },
            null,
            TimeSpan.FromSeconds(1),
            Timeout.InfiniteTimeSpan);
        fixture.Time.AutoAdvanceAmount = TimeSpan.FromSeconds(1); // the next clock read, the pass's, makes the look due
        release();

        await Eventually.TrueAsync(() => Volatile.Read(ref looked) == 1, () => "the look, run inside the pass, to end");
        await Eventually.TrueAsync(() => !sender.IsStalled(long.MaxValue, 0) && sender.WriteOrderFree, () => "the pass to end");
        sender.EnqueueControl("second"u8.ToArray());
        await Eventually.TrueAsync(() => fixture.Sink.Frames.Count == 2, () => $"{fixture.Sink.Frames.Count} frames: the sender is stuck");
    }

    [Test]
    public async Task KeepAlive_PingsAQuietPeer_AndFindsOneThatLeavesThePingUnanswered()
    {
        using var fixture = new Fixture(sendThreads: 1);
        var input = new Pipe();
        var stream = fixture.Sender.CreateStream(input.Reader.AsStream(), static () => { });
        var interval = 30 * fixture.Time.TimestampFrequency;
        var read = new byte[16];
        _ = await ReadOnceAsync(stream, input, read); // the peer sent its subscribe: heard now

        fixture.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.That(fixture.Sender.KeepAlive(fixture.Time.GetTimestamp(), interval), Is.EqualTo(KeepAliveVerdict.None), "quiet 29 s of 30");
        fixture.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(fixture.Sender.KeepAlive(fixture.Time.GetTimestamp(), interval), Is.EqualTo(KeepAliveVerdict.Pinged));
        await Eventually.TrueAsync(() => fixture.Sink.Opcodes.Count == 1, () => "the ping's write");
        Assert.That(fixture.Sink.Opcodes, Is.EqualTo(new[] { 0x9 }));

        fixture.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.That(fixture.Sender.KeepAlive(fixture.Time.GetTimestamp(), interval), Is.EqualTo(KeepAliveVerdict.None), "one ping at a time; 29 s of 30 to answer it");
        fixture.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(fixture.Sender.KeepAlive(fixture.Time.GetTimestamp(), interval), Is.EqualTo(KeepAliveVerdict.Unanswered));
        Assert.That(fixture.Sink.Opcodes, Has.Count.EqualTo(1), "no second ping");
    }

    [Test]
    public async Task KeepAlive_AnAnsweredPing_OrAPeerThatTalks_IsAlive_AndPingedOnlyAfterAnotherQuietInterval()
    {
        using var fixture = new Fixture(sendThreads: 1);
        var input = new Pipe();
        var stream = fixture.Sender.CreateStream(input.Reader.AsStream(), static () => { });
        var interval = 10 * fixture.Time.TimestampFrequency;
        var read = new byte[16];
        var pending = stream.ReadAsync(read).AsTask(); // the WebSocket waits for the next frame

        fixture.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.That(fixture.Sender.KeepAlive(fixture.Time.GetTimestamp(), interval), Is.EqualTo(KeepAliveVerdict.Pinged));
        fixture.Time.Advance(TimeSpan.FromSeconds(3));
        await input.Writer.WriteAsync(new byte[] { 0x8A, 0x80, 1, 2, 3, 4 }); // the masked pong
        Assert.That(await pending, Is.GreaterThan(0));
        pending = stream.ReadAsync(read).AsTask(); // and the WebSocket asks for more: the pong was heard

        fixture.Time.Advance(TimeSpan.FromSeconds(7));
        Assert.That(fixture.Sender.KeepAlive(fixture.Time.GetTimestamp(), interval), Is.EqualTo(KeepAliveVerdict.None), "answered; quiet only 7 s since");
        fixture.Time.Advance(TimeSpan.FromSeconds(3));
        Assert.That(fixture.Sender.KeepAlive(fixture.Time.GetTimestamp(), interval), Is.EqualTo(KeepAliveVerdict.Pinged), "quiet 10 s since the pong");
        Assert.That(fixture.Sender.KeepAlive(fixture.Time.GetTimestamp(), 0), Is.EqualTo(KeepAliveVerdict.None), "0 turns pings off");
        input.Writer.Complete();
        await pending;
    }

    [Test]
    public async Task APing_AfterTheCloseTheWebSocketWrote_IsDropped()
    {
        using var fixture = new Fixture(sendThreads: 1);
        var stream = fixture.Sender.CreateStream(Stream.Null, static () => { });
        var interval = 10 * fixture.Time.TimestampFrequency;
        // The WebSocket answers the peer's close: the sender itself was never asked to close, so the sweep, which read
        // IsClosing before this, goes on to ping.
        await stream.WriteAsync(new byte[] { 0x88, 0x02, 0x03, 0xE8 });
        Assert.That(fixture.Sender.IsClosing, Is.False);

        fixture.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.That(fixture.Sender.KeepAlive(fixture.Time.GetTimestamp(), interval), Is.EqualTo(KeepAliveVerdict.Pinged));
        // A dropped ping is done at once (nothing awaited): had it been written, it would be in the sink by now.
        Assert.That(fixture.Sink.Opcodes, Is.EqualTo(new[] { 0x8 }), "nothing after the close frame (RFC 6455 5.5.1)");
        Assert.That(fixture.Sink.Started, Is.EqualTo(1));
    }

    [Test]
    public async Task APingWaitingForItsWrite_IsDropped_WhenACloseJoinedTheWriteOrderMeanwhile()
    {
        using var fixture = new Fixture(sendThreads: 1);
        var stream = fixture.Sender.CreateStream(Stream.Null, static () => { });
        var interval = 10 * fixture.Time.TimestampFrequency;
        var release = fixture.Sink.HoldNextWrite();
        fixture.Sender.EnqueueControl("ack"u8.ToArray());
        await Eventually.TrueAsync(() => fixture.Sink.Started == 1, () => "the pass's write, held: it keeps the write order");

        fixture.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.That(fixture.Sender.KeepAlive(fixture.Time.GetTimestamp(), interval), Is.EqualTo(KeepAliveVerdict.Pinged), "the ping waits its turn");
        var close = stream.WriteAsync(new byte[] { 0x88, 0x02, 0x03, 0xE8 }).AsTask(); // and the close behind it
        release();
        await close;
        await Eventually.TrueAsync(() => fixture.Sink.Opcodes.Contains(0x8), () => "the close's write");
        Assert.That(fixture.Sink.Opcodes, Is.EqualTo(new[] { 0x1, 0x8 }), "the ping looked again when its turn came, and stood down");
        Assert.That(fixture.Sink.Overlaps, Is.Zero);
    }

    [Test]
    public async Task NothingIsWritten_AfterOurCloseFrame_NeitherAPongThatWaitedForItsTurn_NorALaterPass()
    {
        using var fixture = new Fixture(sendThreads: 1);
        var stream = fixture.Sender.CreateStream(Stream.Null, static () => { });
        var release = fixture.Sink.HoldNextWrite();
        var close = stream.WriteAsync(new byte[] { 0x88, 0x02, 0x03, 0xE8 }).AsTask(); // our close (the protocol-error path writes it so)
        await Eventually.TrueAsync(() => fixture.Sink.Started == 1, () => "the close's write, held: it keeps the write order");

        var pong = stream.WriteAsync(new byte[] { 0x8A, 0x00 }).AsTask(); // admitted after it: dropped at once
        fixture.Sender.EnqueueControl("ack"u8.ToArray()); // a pass builds a batch behind the close
        var pumped = fixture.Pumped();
        release();
        await Task.WhenAll(close, pong, pumped);
        await Eventually.TrueAsync(() => fixture.Sender.QueuedCount == 0 && fixture.Sender.WriteOrderFree, () => "the pass behind the close to finish");
        fixture.Sender.EnqueueControl("late"u8.ToArray());
        await fixture.Pumped();
        await Eventually.TrueAsync(() => fixture.Sender.QueuedCount == 0 && fixture.Sender.WriteOrderFree, () => "a later pass to finish");

        Assert.That(fixture.Sink.Opcodes, Is.EqualTo(new[] { 0x8 }), "the close alone: RFC 6455 5.5.1");
        Assert.That(fixture.Sink.Overlaps, Is.Zero);
    }

    [Test]
    public async Task APingSpreadEarlier_GoesOutAfterItsQuietTime_AndIsStillGivenTheWholeIntervalToBeAnswered()
    {
        // The session spreads its sockets' pings by id: this one is due after 20 s of quiet, of a 30 s interval.
        using var fixture = new Fixture(sendThreads: 1);
        var frequency = fixture.Time.TimestampFrequency;
        var (interval, quiet) = (30 * frequency, 20 * frequency);
        fixture.Time.Advance(TimeSpan.FromSeconds(19));
        Assert.That(fixture.Sender.KeepAlive(fixture.Time.GetTimestamp(), interval, quiet), Is.EqualTo(KeepAliveVerdict.None));
        fixture.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(fixture.Sender.KeepAlive(fixture.Time.GetTimestamp(), interval, quiet), Is.EqualTo(KeepAliveVerdict.Pinged));
        await Eventually.TrueAsync(() => fixture.Sink.Opcodes.Count == 1, () => "the ping's write");

        fixture.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.That(fixture.Sender.KeepAlive(fixture.Time.GetTimestamp(), interval, quiet), Is.EqualTo(KeepAliveVerdict.None), "29 s of 30 to answer");
        fixture.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(fixture.Sender.KeepAlive(fixture.Time.GetTimestamp(), interval, quiet), Is.EqualTo(KeepAliveVerdict.Unanswered));
    }

    private static async Task<int> ReadOnceAsync(Stream stream, Pipe input, byte[] buffer)
    {
        var read = stream.ReadAsync(buffer).AsTask();
        await input.Writer.WriteAsync(new byte[] { 0x81, 0x80, 1, 2, 3, 4 });
        var count = await read;
        _ = stream.ReadAsync(buffer); // the next frame is waited for
        return count;
    }

    private static byte[] Filled(int length, char c) => Enumerable.Repeat((byte)c, length).ToArray();

    /// <summary>
    /// No two writes reached the sink at once; each of three writers' frames (<paramref name="prefix"/>, the writer, a colon,
    /// its count) went out once each and in its order; no instrument's price followed a newer one.
    /// </summary>
    private static void AssertWrittenInOrder(Fixture fixture, Subscription[] subscriptions, char prefix, int perWriter)
    {
        Assert.That(fixture.Sink.Overlaps, Is.Zero, "two writes reached the sink at once");
        for (var w = 0; w < 3; w++)
        {
            var mine = fixture.Sink.Frames.Where(f => f.StartsWith($"{prefix}{w}:", StringComparison.Ordinal)).ToList();
            Assert.That(mine, Is.EqualTo(Enumerable.Range(0, perWriter).Select(i => $"{prefix}{w}:{i}")), $"writer {w}'s frames, once each, in order");
        }

        foreach (var subscription in subscriptions)
        {
            var seqs = fixture.Sink.Seqs(subscription.InstrumentId);
            Assert.That(seqs, Is.Ordered.Ascending.And.Unique, $"instrument {subscription.InstrumentId}: never an older price after a newer one");
        }
    }

    private sealed class Fixture : IDisposable
    {
        private readonly SendPump _pump;
        private readonly FrameEncoder _encoder = new(microseconds: false);
        private readonly InstrumentRegistry _instruments;

        public Fixture(int sendThreads, Action? abort = null, LimitsOptions? limits = null)
        {
            _instruments = new InstrumentRegistry(Enumerable.Range(0, Instruments).Select(i => ($"NSE_EQ|TEST{i}", $"T{i}", $"Test {i}", 100.0)));
            Cache = new PriceCache(_instruments);
            Metrics = new PipelineMetrics(new TestMeterFactory());
            _pump = new SendPump(sendThreads);
            var services = new SessionServices(
                _instruments, new SubscriptionIndex(_instruments), Cache, new FeedStatus(), Metrics,
                Options.Create(limits ?? new LimitsOptions()), Time, NullLoggerFactory.Instance, new NoUpstreamInterest(), _pump)
            {
                KeepAliveTime = Time,
            };
            Sender = new SocketSender(1, "test", Sink, abort ?? (static () => { }), services);
        }

        public FakeTimeProvider Time { get; } = new();

        public RecordingSink Sink { get; } = new();

        public PriceCache Cache { get; }

        public PipelineMetrics Metrics { get; }

        public SocketSender Sender { get; }

        /// <summary>What the throttle stage does: the frame goes into the cache before fan-out offers it.</summary>
        /// <summary>Completes once every pass queued on the pump before the call has run its synchronous part (one thread).</summary>
        public Task Pumped()
        {
            var marker = new PumpMarker();
            _pump.Schedule(marker, 0);
            return marker.Done.Task;
        }

        public PriceFrame Emit(int instrumentId, long seq)
        {
            var frame = _encoder.Encode(_instruments[instrumentId], new Tick(instrumentId, 100 + seq, seq, 0, 1, PriceSource.Simulated), seq, 100);
            Cache.Set(frame);
            return frame;
        }

        /// <summary>A fan-out thread: seqs 1 to <paramref name="seqs"/> of every subscription's instrument, each cached, then offered.</summary>
        public void EmitAndOffer(Subscription[] subscriptions, int seqs)
        {
            for (var seq = 1; seq <= seqs; seq++)
            {
                foreach (var subscription in subscriptions)
                {
                    subscription.Offer(Emit(subscription.InstrumentId, seq));
                }
            }
        }

        public void Dispose() => _pump.Dispose();
    }

    /// <summary>A sink that parses the server frames it is given and notices two writes at once.</summary>
    private sealed class PumpMarker : ISendPass
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void RunSendPass() => Done.SetResult();
    }

    private sealed class RecordingSink : IFrameSink
    {
        private readonly Lock _gate = new();
        private readonly List<string> _frames = [];
        private readonly List<int> _opcodes = [];
        private readonly MemoryStream _raw = new();
        private readonly Dictionary<int, List<long>> _seqs = [];
        private TaskCompletionSource? _hold;
        private int _inWrite;

        public int PendEvery { get; set; }

        public Exception? Fail { get; set; }

        public int Overlaps;

        public int Started;

        public int Writes;

        public int? CloseStatus { get; private set; }

        /// <summary>Every byte written, in order.</summary>
        public byte[] Raw
        {
            get
            {
                lock (_gate)
                {
                    return _raw.ToArray();
                }
            }
        }

        public List<string> Frames
        {
            get
            {
                lock (_gate)
                {
                    return [.. _frames];
                }
            }
        }

        public List<int> Opcodes
        {
            get
            {
                lock (_gate)
                {
                    return [.. _opcodes];
                }
            }
        }

        public List<long> Seqs(int instrumentId)
        {
            lock (_gate)
            {
                return _seqs.TryGetValue(instrumentId, out var seqs) ? [.. seqs] : [];
            }
        }

        public long LastSeq(int instrumentId) => Seqs(instrumentId) is { Count: > 0 } seqs ? seqs[^1] : 0;

        /// <summary>The next write stays pending until the returned action runs.</summary>
        public Action HoldNextWrite()
        {
            var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _hold = hold;
            return () => hold.SetResult();
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes)
        {
            if (Interlocked.Exchange(ref _inWrite, 1) != 0)
            {
                Interlocked.Increment(ref Overlaps);
            }

            var started = Interlocked.Increment(ref Started);
            if (Fail is { } fail)
            {
                Volatile.Write(ref _inWrite, 0);
                return ValueTask.FromException(fail);
            }

            // A pending write reads its bytes when it completes, as the kernel would: a sender that gave its buffer back
            // to the pool (where the next socket's pass rents it) before then would show here as corrupt frames.
            if (Interlocked.Exchange(ref _hold, null) is { } hold)
            {
                return new ValueTask(hold.Task.ContinueWith(_ => Complete(bytes.ToArray()), TaskScheduler.Default));
            }

            if (PendEvery > 0 && started % PendEvery == 0)
            {
                return new ValueTask(Task.Run(async () =>
                {
                    await Task.Yield();
                    Complete(bytes.ToArray());
                }));
            }

            Complete(bytes.ToArray());
            return ValueTask.CompletedTask;
        }

        public void Cancel()
        {
        }

        private void Complete(byte[] bytes)
        {
            lock (_gate)
            {
                _raw.Write(bytes);
                var at = 0;
                while (at < bytes.Length)
                {
                    var opcode = bytes[at] & 0x0F;
                    var length = (long)(bytes[at + 1] & 0x7F);
                    at += 2;
                    if (length == 126)
                    {
                        length = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(at));
                        at += 2;
                    }
                    else if (length == 127)
                    {
                        length = (long)BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(at));
                        at += 8;
                    }

                    var payload = bytes.AsSpan(at, (int)length);
                    at += (int)length;
                    _opcodes.Add(opcode);
                    if (opcode == 0x8)
                    {
                        CloseStatus = BinaryPrimitives.ReadUInt16BigEndian(payload);
                    }
                    else if (opcode == 0x1 && payload.StartsWith("{\"type\":\"price_update\""u8))
                    {
                        var json = System.Text.Json.JsonDocument.Parse(payload.ToArray()).RootElement;
                        var key = json.GetProperty("instrument_key").GetString()!;
                        var id = int.Parse(key["NSE_EQ|TEST".Length..], System.Globalization.CultureInfo.InvariantCulture);
                        (_seqs.TryGetValue(id, out var list) ? list : _seqs[id] = []).Add(json.GetProperty("data").GetProperty("seq").GetInt64());
                    }
                    else if (opcode == 0x1)
                    {
                        _frames.Add(Encoding.UTF8.GetString(payload));
                    }
                }
            }

            Interlocked.Increment(ref Writes);
            Volatile.Write(ref _inWrite, 0);
        }
    }
}
