using System.Collections.Concurrent;

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
    public static Task Run(string name, Func<Task> loop)
    {
        var context = new DedicatedThread();
        var completion = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
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

    public override SynchronizationContext CreateCopy() => this;
}
