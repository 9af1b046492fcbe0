using System.Threading.Tasks.Sources;

namespace PriceDaemon.Pipeline;

/// <summary>
/// A delay that allocates nothing per wait, for a loop that sleeps between passes (the simulated feed's tick
/// batches, the candle pass, the storage flush): one timer of the injected
/// <see cref="TimeProvider"/>, moved for each wait, completes one reusable value-task source. <c>Task.Delay</c>
/// with a time provider and a token allocates a promise, a timer and a token registration every time (~32 KB/s in
/// campus-peak). Waits vary in length, so a <see cref="PeriodicTimer"/> does not fit. One waiter at a time.
/// </summary>
internal sealed class ReusableDelay : IValueTaskSource, IDisposable
{
    private readonly ITimer _timer;
    private readonly CancellationToken _stopping;
    private readonly CancellationTokenRegistration _stop;
    private ManualResetValueTaskSourceCore<bool> _core;
    private int _waiting;

    public ReusableDelay(TimeProvider time, CancellationToken stopping)
    {
        // Continuations go to the thread pool, never inline on the timer's thread or inside the stop's Cancel.
        _core.RunContinuationsAsynchronously = true;
        _stopping = stopping;
        _timer = time.CreateTimer(static s => ((ReusableDelay)s!).Complete(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _stop = stopping.UnsafeRegister(static s => ((ReusableDelay)s!).Complete(), this);
    }

    /// <summary>Completes after <paramref name="delay"/>, or throws <see cref="OperationCanceledException"/> once the token fires.</summary>
    public ValueTask WaitAsync(TimeSpan delay)
    {
        _stopping.ThrowIfCancellationRequested();
        _core.Reset();
        Volatile.Write(ref _waiting, 1);
        _timer.Change(delay, Timeout.InfiniteTimeSpan);
        if (_stopping.IsCancellationRequested)
        {
            Complete(); // the token fired between the check and the flag: its callback found nothing to wake
        }

        return new ValueTask(this, _core.Version);
    }

    public void Dispose()
    {
        _stop.Dispose();
        _timer.Dispose();
    }

    void IValueTaskSource.GetResult(short token)
    {
        _core.GetResult(token);
        _stopping.ThrowIfCancellationRequested();
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    // The timer or the token, whichever comes first, completes the wait once; the other finds it done.
    private void Complete()
    {
        if (Interlocked.Exchange(ref _waiting, 0) == 1)
        {
            _core.SetResult(true);
        }
    }
}
