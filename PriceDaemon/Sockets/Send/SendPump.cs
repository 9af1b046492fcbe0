using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace PriceDaemon.Sockets.Send;

/// <summary>Something a <see cref="SendPump"/> thread can run a send pass for.</summary>
internal interface ISendPass
{
    /// <summary>Writes what is ready without blocking; a write that cannot finish at once continues elsewhere.</summary>
    void RunSendPass();
}

/// <summary>
/// A few threads that write every socket's ready frames, instead of one thread-pool wake-up per socket per
/// frame. Fan-out marks a session ready and queues it here once; a pump thread appends whatever the session
/// has ready by then into one buffer and writes it. A burst that reaches a thousand sockets is a thousand
/// writes on one or two warm threads, with no context switch between them, and frames that arrive while a
/// pump is busy join the next write of their socket instead of needing one of their own.
/// </summary>
internal sealed class SendPump : IDisposable
{
    private readonly Worker[] _workers;

    public SendPump(IOptions<TransportOptions> options)
        : this(options.Value.SendThreads)
    {
    }

    /// <param name="threads">0 picks one per two cores, between one and four.</param>
    public SendPump(int threads)
    {
        if (threads <= 0)
        {
            threads = Math.Clamp(Environment.ProcessorCount / 2, 1, 4);
        }

        _workers = new Worker[threads];
        for (var i = 0; i < threads; i++)
        {
            _workers[i] = new Worker($"pricedaemon-send-{i}");
        }
    }

    public int Threads => _workers.Length;

    /// <summary>
    /// Queues a pass. The caller guarantees a session is queued at most once at a time (see
    /// <c>SocketSender.ScheduleSend</c>); <paramref name="key"/> picks its thread, so one session's passes
    /// always run in order on the same thread.
    /// </summary>
    public void Schedule(ISendPass session, long key) => _workers[(int)((ulong)key % (ulong)_workers.Length)].Enqueue(session);

    public void Dispose()
    {
        foreach (var worker in _workers)
        {
            worker.Stop();
        }
    }

    private sealed class Worker
    {
        private readonly ConcurrentQueue<ISendPass> _queue = new();
        private readonly SemaphoreSlim _wake = new(0);
        private int _sleeping;
        private volatile bool _stopping;

        public Worker(string name)
        {
            // UnsafeStart: the thread must not carry the execution context (log scope, trace) of whichever
            // request happened to create the pump.
            new Thread(Run) { IsBackground = true, Name = name }.UnsafeStart();
        }

        public void Enqueue(ISendPass session)
        {
            if (_stopping)
            {
                // Host shutdown: the thread is gone or going; a late close or error frame still goes out.
                session.RunSendPass();
                return;
            }

            // ConcurrentQueue.Enqueue publishes with an interlocked operation, a full fence, so the read of
            // _sleeping below cannot move before it (the pump's side is the Exchange in Run).
            _queue.Enqueue(session);
            // Only a sleeping pump needs a wake-up; a busy one finds the session on its next dequeue.
            if (Volatile.Read(ref _sleeping) != 0 && Interlocked.Exchange(ref _sleeping, 0) != 0)
            {
                _wake.Release();
            }
        }

        public void Stop()
        {
            _stopping = true;
            _wake.Release();
        }

        private void Run()
        {
            while (true)
            {
                while (_queue.TryDequeue(out var session))
                {
                    session.RunSendPass();
                }

                if (_stopping)
                {
                    // Sessions queued just before Stop.
                    while (_queue.TryDequeue(out var late))
                    {
                        late.RunSendPass();
                    }

                    return;
                }

                // Announce the sleep (a full fence), then look once more: a session queued between the last
                // dequeue and the announcement is either seen here or its producer saw the flag and wakes us.
                Interlocked.Exchange(ref _sleeping, 1);
                if (!_queue.IsEmpty && Interlocked.Exchange(ref _sleeping, 0) != 0)
                {
                    continue;
                }

                _wake.Wait();
            }
        }
    }
}
