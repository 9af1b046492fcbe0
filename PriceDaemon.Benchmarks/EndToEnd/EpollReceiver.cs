using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>
/// The load generator's receive side: one thread, one level-triggered epoll set, one non-blocking
/// <c>recv</c> per readable socket into one shared buffer. The runtime's socket engine would spend two
/// operations, a thread-pool-style completion and an execution-context switch per arrival; on two cores
/// shared with the server under test, every cycle the load generator saves is one the server gets, and the
/// harness measures the server instead of itself. Linux only, like the rest of the harness (/proc).
/// </summary>
internal sealed partial class EpollReceiver : IDisposable
{
    /// <summary>A socket the receive thread reads: told when it is readable, and of a failure while it was read.</summary>
    public interface IReadable
    {
        /// <summary>One non-blocking receive into <paramref name="shared"/> (or its own buffer) and whatever follows.</summary>
        void OnReadable(byte[] shared);

        void Fail(Exception ex);
    }

    private const int EpollCtlAdd = 1;
    private const int EpollCtlDel = 2;
    private const uint EpollIn = 0x001;
    private const uint EpollRdHup = 0x2000;
    private const int EpollCloExec = 0x80000;
    private const int Eintr = 4;
    private const int MaxEvents = 512;
    private const int WaitTimeoutMs = 50;

    // struct epoll_event is packed on x86-64 (12 bytes) and naturally aligned on arm64 (16 bytes); the harness
    // runs on those two (little-endian, 64-bit), which the constructor checks.
    private static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    private static readonly int DataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    private readonly int _epoll;
    private readonly Thread _thread;
    private readonly Lock _registryLock = new();
    private IReadable?[] _clients = new IReadable?[1024];
    private int _registered;
    private readonly Action<string> _onError;
    private volatile bool _stopping;
    private int _disposed;

    /// <param name="onError">Told of a failure that stops the receive thread or one connection, once each.</param>
    public EpollReceiver(Action<string> onError)
    {
        _onError = onError;
        if (RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64))
        {
            throw new PlatformNotSupportedException("the load generator's epoll layout is known for x64 and arm64 only");
        }

        _epoll = EpollCreate1(EpollCloExec);
        if (_epoll < 0)
        {
            throw new InvalidOperationException($"epoll_create1 failed: errno {Marshal.GetLastPInvokeError()}");
        }

        _thread = new Thread(Run) { IsBackground = true, Name = "load-generator-epoll" };
        _thread.UnsafeStart();
    }

    /// <summary>A token for <paramref name="client"/>: events carrying it reach the client once <see cref="Watch"/> is called.</summary>
    public int Reserve(IReadable client)
    {
        lock (_registryLock)
        {
            var token = _registered++;
            if (token == _clients.Length)
            {
                var grown = new IReadable?[_clients.Length * 2];
                _clients.CopyTo(grown, 0);
                Volatile.Write(ref _clients, grown);
            }

            Volatile.Write(ref _clients[token], client);
            return token;
        }
    }

    /// <summary>Starts delivering <paramref name="fd"/>'s readability to the client holding <paramref name="token"/>.</summary>
    public void Watch(int token, nint fd)
    {
        Span<byte> ev = stackalloc byte[16];
        ev.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(ev, EpollIn | EpollRdHup);
        BinaryPrimitives.WriteUInt64LittleEndian(ev[DataOffset..], (ulong)token);
        if (EpollCtl(_epoll, EpollCtlAdd, (int)fd, ref MemoryMarshal.GetReference(ev)) != 0)
        {
            throw new InvalidOperationException($"epoll_ctl(ADD) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Stops watching a socket; called on the receive thread when its connection ends.</summary>
    public void Remove(int token, nint fd)
    {
        Span<byte> ev = stackalloc byte[16];
        ev.Clear();
        _ = EpollCtl(_epoll, EpollCtlDel, (int)fd, ref MemoryMarshal.GetReference(ev));
        Volatile.Write(ref Volatile.Read(ref _clients)[token], null);
    }

    /// <summary>Stops the receive thread and waits for it, so no socket is read once its owner disposes it.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping = true;
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }

        Close(_epoll);
    }

    private void Run()
    {
        var events = new byte[MaxEvents * EventSize];
        var buffer = new byte[256 * 1024];
        while (!_stopping)
        {
            var ready = EpollWait(_epoll, ref events[0], MaxEvents, WaitTimeoutMs);
            if (ready < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Eintr)
                {
                    continue;
                }

                // Every connection stops receiving: the run's frame counts and last values show it.
                _onError($"epoll_wait failed (errno {errno}); the load generator stopped receiving");
                return;
            }

            var clients = Volatile.Read(ref _clients);
            for (var i = 0; i < ready && !_stopping; i++)
            {
                var token = (int)BinaryPrimitives.ReadUInt64LittleEndian(events.AsSpan((i * EventSize) + DataOffset));
                if ((uint)token < (uint)clients.Length && Volatile.Read(ref clients[token]) is { } client)
                {
                    try
                    {
                        client.OnReadable(buffer);
                    }
                    catch (Exception ex)
                    {
                        // One connection's failure must not end the run: it is counted and that connection ends.
                        client.Fail(ex);
                    }
                }
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static partial int EpollCtl(int epfd, int op, int fd, ref byte ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    private static partial int EpollWait(int epfd, ref byte events, int maxEvents, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
