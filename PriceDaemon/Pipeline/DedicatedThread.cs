using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace PriceDaemon.Pipeline;

/// <summary>
/// Runs a stage's async loop on a thread of its own: every await in the loop resumes on that thread.
/// In a burst, fan-out wakes thousands of socket writers in the thread pool's queue; a stage loop that
/// resumed there would wait behind them, and every price behind it would too.
/// </summary>
/// <remarks>
/// An idle stage thread sleeps at once, without spinning first. A <c>BlockingCollection</c> (a <c>SemaphoreSlim</c>
/// inside) spins 140 rounds before it sleeps, most of them <c>sched_yield</c> calls: on two cores that was 3 % of the
/// daemon's CPU in campus-peak on the throttle thread alone, and the fan-out thread's yields handed its core to the
/// send thread and back (perf, quiet AMD EPYC, 2026-12-02). A stage resumes once per burst of work, so the wake-up
/// it pays instead is paid once per burst.
/// </remarks>
internal sealed class DedicatedThread : SynchronizationContext
{
    private readonly ConcurrentQueue<(SendOrPostCallback Callback, object? State)> _work = new();
    private readonly ManualResetEventSlim _posted = new(initialState: false, spinCount: 0);
    private volatile bool _ended;

    private DedicatedThread()
    {
    }

    /// <summary>Starts <paramref name="loop"/> on a new background thread; the task completes as the loop does.</summary>
    /// <param name="niceness">
    /// Above 0, the thread yields the CPU to the rest of the process (Linux nice value, 1-19): for work that
    /// must not compete with the latency path when both want a core, such as storage write-behind.
    /// </param>
    public static Task Run(string name, Func<Task> loop, int niceness = 0)
    {
        var context = new DedicatedThread();
        var completion = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            if (niceness > 0)
            {
                Lower(niceness);
            }

            SetSynchronizationContext(context);
            Task task;
            try
            {
                task = loop();
            }
            catch (Exception ex)
            {
                task = Task.FromException(ex);
            }

            task.ContinueWith(static (_, s) => ((DedicatedThread)s!).End(), context, TaskScheduler.Default);
            context.RunPosted();

            if (task.Exception is { } error)
            {
                completion.SetException(error.InnerExceptions);
            }
            else if (task.IsCanceled)
            {
                completion.SetCanceled();
            }
            else
            {
                completion.SetResult();
            }
        })
        {
            IsBackground = true,
            Name = name,
        };
        thread.Start();
        return completion.Task;
    }

    public override void Post(SendOrPostCallback d, object? state)
    {
        if (_ended)
        {
            // The loop has ended; a late timer or channel callback has nothing left to resume.
            return;
        }

        _work.Enqueue((d, state));
        _posted.Set();
    }

    /// <summary>Runs what is posted until the loop has ended and everything posted before that has run.</summary>
    private void RunPosted()
    {
        while (true)
        {
            while (_work.TryDequeue(out var item))
            {
                item.Callback(item.State);
            }

            if (_ended)
            {
                // Posted before the end was seen: run it, as the collection's consumer did before.
                while (_work.TryDequeue(out var late))
                {
                    late.Callback(late.State);
                }

                return;
            }

            // Reset is an interlocked update (a full fence), so the look at the queue below cannot move before it: an
            // item posted before the reset is seen here, one posted after it sets the event again.
            _posted.Reset();
            if (_work.IsEmpty && !_ended)
            {
                _posted.Wait();
            }
        }
    }

    private void End()
    {
        _ended = true;
        _posted.Set();
    }

    public override void Send(SendOrPostCallback d, object? state) => throw new NotSupportedException();

    /// <summary>
    /// Sets the calling thread's nice value. .NET's Thread.Priority does nothing on Linux, but the kernel's
    /// scheduler weighs each thread by its own nice value. Best effort: elsewhere, or if refused, the thread
    /// keeps the normal priority, which is only slower under contention.
    /// </summary>
    private static void Lower(int niceness)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            _ = SetPriority(PrioProcess, GetThreadId(), niceness);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            // A libc without gettid: the thread runs at the normal priority.
        }
    }

    private const int PrioProcess = 0;

    [DllImport("libc", EntryPoint = "setpriority")]
    private static extern int SetPriority(int which, int who, int priority);

    [DllImport("libc", EntryPoint = "gettid")]
    private static extern int GetThreadId();

    public override SynchronizationContext CreateCopy() => this;
}
