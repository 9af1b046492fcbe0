using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace PriceDaemon.Pipeline;

/// <summary>
/// Runs a stage's async loop on a thread of its own: every await in the loop resumes on that thread.
/// In a burst, fan-out wakes thousands of socket writers in the thread pool's queue; a stage loop that
/// resumed there would wait behind them, and every price behind it would too.
/// </summary>
internal sealed class DedicatedThread : SynchronizationContext
{
    private readonly BlockingCollection<(SendOrPostCallback Callback, object? State)> _work = [];

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

            task.ContinueWith(static (_, s) => ((DedicatedThread)s!)._work.CompleteAdding(), context, TaskScheduler.Default);
            foreach (var (callback, state) in context._work.GetConsumingEnumerable())
            {
                callback(state);
            }

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
        try
        {
            _work.Add((d, state));
        }
        catch (InvalidOperationException)
        {
            // The loop has ended; a late timer or channel callback has nothing left to resume.
        }
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
