using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>
/// What the machine can do with no WebSocket server at all: a child process (<c>raw-sender</c>) writes the
/// same price_update frame bytes to the same number of plain loopback TCP sockets, one frame per write or
/// several per write, from one thread per core; this process reads them back on one <see cref="EpollReceiver"/> thread,
/// as it reads the daemon's clients (a reader that sleeps less often would spare the sender waking it). The sender's own CPU per
/// frame is the floor the daemon's CPU per delivered frame is compared with. Paced, one thread writes at a set rate
/// instead, round the sockets in turn, so its reader sleeps between writes as a server's clients do.
/// </summary>
internal static class RawCeiling
{
    private const string ResultPrefix = "raw-sender result ";
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(60);

    /// <summary>A daemon frame for a synthetic instrument, WebSocket-framed as the daemon sends it.</summary>
    public static byte[] Frame()
    {
        var instrument = new Instrument(0, "NSE_EQ|SYN0000001", "SYN0000001", "Synthetic instrument 0000001", 2450);
        var tick = new Tick(0, 2451.55, 15_000_123, LoadClient.UnixMicrosecondsNow(), 0, PriceSource.Simulated);
        var payload = new FrameEncoder(microseconds: true).Encode(instrument, tick, 42, 2450).Utf8;
        var frame = new byte[payload.Length + 4];
        return frame[..WebSocketFrameParser.WriteServerFrame(frame, WebSocketOpcode.Text, payload.Span)];
    }

    /// <param name="writesPerSecond">0: flat out from one thread per core; else one thread paced to this many writes a second.</param>
    public static async Task<CeilingResult> MeasureAsync(string benchmarksDll, int connections, int framesPerWrite, TimeSpan duration, double writesPerSecond = 0)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1024);
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;

        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
        LoadGeneratorSockets.KeepFrom(info);
        foreach (var arg in new[] { benchmarksDll, "raw-sender", "--port", Inv(port), "--connections", Inv(connections), "--frames-per-write", Inv(framesPerWrite), "--seconds", Inv(duration.TotalSeconds), "--writes-per-second", Inv(writesPerSecond) })
        {
            info.ArgumentList.Add(arg);
        }

        using var sender = Process.Start(info)!;
        var output = sender.StandardOutput.ReadToEndAsync();
        var sockets = new List<DrainedSocket>(connections);
        string? failure = null;
        using (var receiver = new EpollReceiver(error => failure ??= error))
        {
            using var connectTimeout = new CancellationTokenSource(ConnectTimeout);
            for (var i = 0; i < connections; i++)
            {
                sockets.Add(new DrainedSocket(await listener.AcceptAsync(connectTimeout.Token).ConfigureAwait(false), receiver));
            }

            await sender.WaitForExitAsync().ConfigureAwait(false);
            await Task.WhenAll(sockets.Select(static s => s.Ended)).WaitAsync(ConnectTimeout).ConfigureAwait(false);
        }

        foreach (var socket in sockets)
        {
            socket.Dispose();
        }

        if (failure is not null)
        {
            throw new InvalidOperationException($"raw ceiling: {failure}");
        }

        var line = (await output.ConfigureAwait(false)).Split('\n').FirstOrDefault(static l => l.StartsWith(ResultPrefix, StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"raw-sender exited with {sender.ExitCode} and no result");
        var fields = line[ResultPrefix.Length..].Split(' ').Select(static f => double.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        var mode = writesPerSecond > 0 ? "paced" : framesPerWrite == 1 ? "one frame per write" : "batched";
        return new CeilingResult(mode, framesPerWrite, connections, (long)fields[0], fields[1], fields[2], writesPerSecond);
    }

    /// <summary>The child side: connects, writes for the given time, prints frames, seconds and its CPU seconds.</summary>
    public static int RunSender(string[] args)
    {
        var port = int.Parse(Option(args, "--port"), CultureInfo.InvariantCulture);
        var connections = int.Parse(Option(args, "--connections"), CultureInfo.InvariantCulture);
        var framesPerWrite = int.Parse(Option(args, "--frames-per-write"), CultureInfo.InvariantCulture);
        var duration = TimeSpan.FromSeconds(double.Parse(Option(args, "--seconds"), CultureInfo.InvariantCulture));
        var writesPerSecond = double.Parse(Option(args, "--writes-per-second"), CultureInfo.InvariantCulture);

        var frame = Frame();
        var write = new byte[frame.Length * framesPerWrite];
        for (var i = 0; i < framesPerWrite; i++)
        {
            frame.CopyTo(write, i * frame.Length);
        }

        var sockets = new Socket[connections];
        for (var i = 0; i < connections; i++)
        {
            sockets[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            sockets[i].Connect(IPAddress.Loopback, port);
        }

        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var written = writesPerSecond > 0 ? WritePaced(sockets, write, writesPerSecond, duration, clock) : WriteFlatOut(sockets, write, duration, clock);
        var seconds = clock.Elapsed.TotalSeconds;
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        foreach (var socket in sockets)
        {
            socket.Shutdown(SocketShutdown.Send);
            socket.Dispose();
        }

        Console.WriteLine(Inv($"{ResultPrefix}{written * framesPerWrite} {seconds} {cpu}"));
        return 0;
    }

    /// <summary>One thread per core, each round its share of the sockets as fast as the kernel takes the writes.</summary>
    private static long WriteFlatOut(Socket[] sockets, byte[] write, TimeSpan duration, Stopwatch clock)
    {
        var writers = Environment.ProcessorCount;
        var writes = new long[writers];
        Parallel.For(0, writers, new ParallelOptions { MaxDegreeOfParallelism = writers }, w =>
        {
            while (clock.Elapsed < duration)
            {
                for (var s = w; s < sockets.Length; s += writers)
                {
                    sockets[s].Send(write);
                }

                writes[w] += (sockets.Length - w + writers - 1) / writers;
            }
        });

        return writes.Sum();
    }

    /// <summary>
    /// One thread, the sockets in turn, each write due at its place in an even schedule of <paramref name="writesPerSecond"/>;
    /// ahead of it the thread sleeps (a millisecond at a time, so writes go out in short bursts, as a send thread's pass does).
    /// </summary>
    private static long WritePaced(Socket[] sockets, byte[] write, double writesPerSecond, TimeSpan duration, Stopwatch clock)
    {
        var ticksPerWrite = Stopwatch.Frequency / writesPerSecond;
        var end = (long)(duration.TotalSeconds * Stopwatch.Frequency);
        long written = 0;
        var next = 0;
        while (clock.ElapsedTicks < end)
        {
            if (clock.ElapsedTicks < written * ticksPerWrite)
            {
                Thread.Sleep(1);
                continue;
            }

            sockets[next].Send(write);
            next = next + 1 == sockets.Length ? 0 : next + 1;
            written++;
        }

        return written;
    }

    /// <summary>A raw socket the receive thread reads and throws away, one receive per readable event, until the sender closes it.</summary>
    private sealed class DrainedSocket : EpollReceiver.IReadable, IDisposable
    {
        private readonly Socket _socket;
        private readonly EpollReceiver _receiver;
        private readonly int _token;
        private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public DrainedSocket(Socket socket, EpollReceiver receiver)
        {
            _socket = socket;
            _socket.Blocking = false;
            _receiver = receiver;
            _token = receiver.Reserve(this);
            receiver.Watch(_token, socket.Handle);
        }

        public Task Ended => _ended.Task;

        public void OnReadable(byte[] shared)
        {
            var read = _socket.Receive(shared, SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock)
            {
                return;
            }

            if (error != SocketError.Success || read == 0)
            {
                // The sender closed (or reset) its end at exit.
                End();
            }
        }

        public void Fail(Exception ex) => End();

        public void Dispose() => _socket.Dispose();

        private void End()
        {
            _receiver.Remove(_token, _socket.Handle);
            _ended.TrySetResult();
        }
    }

    private static string Option(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : throw new ArgumentException($"raw-sender needs {name}");
    }

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private static string Inv(double value) => value.ToString(CultureInfo.InvariantCulture);
}
