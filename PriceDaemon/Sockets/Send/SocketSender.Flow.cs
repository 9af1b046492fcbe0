using System.Net.WebSockets;

namespace PriceDaemon.Sockets.Send;

/// <summary>
/// Flow control before a close: a socket that stays behind is warned and downsampled (its prices go out at most once
/// per <c>Limits:SlowConsumerIntervalMs</c> per instrument), returns to full rate when it keeps up, and is closed only
/// if it cannot keep up even then. Control frames (notifications, acks, status) are never held back.
/// </summary>
internal sealed partial class SocketSender
{
    /// <summary>
    /// Sweeper only, about once a second: one look of the state machine (<see cref="FlowControl"/>) with the time this
    /// socket's writes were pending, and what it decides.
    /// </summary>
    public void CheckFlow(long now)
    {
        var limits = _services.Flow;
        if (!limits.Enabled || IsClosing)
        {
            return;
        }

        switch (_flow.Observe(now, BusyTicks(now), limits))
        {
            case FlowVerdict.Warn:
                _downsampled = true;
                Interlocked.Increment(ref _services.Metrics.SlowConsumersWarned);
                SocketLog.SlowConsumerWarned(_services.Logger, Id, Remote, _services.Limits.SlowConsumerIntervalMs);
                EnqueueControl(ControlFrames.SlowConsumerWarning(_services.Limits.SlowConsumerIntervalMs));
                break;
            case FlowVerdict.Clear:
                _downsampled = false;
                SocketLog.SlowConsumerRecovered(_services.Logger, Id, Remote);
                // Its pass also writes whatever prices the last round left marked, at once.
                EnqueueControl(ControlFrames.SlowConsumerCleared());
                break;
            case FlowVerdict.Close:
                Interlocked.Increment(ref _services.Metrics.SlowConsumersClosed);
                SocketLog.SlowConsumer(_services.Logger, Id, Remote, "behind even when downsampled");
                // It still reads, slowly: it gets the reason and a close frame, and is cut after the close timeout if not.
                EnqueueControl(ControlFrames.Error(ErrorCodes.SlowConsumer, "this connection could not keep up even at the reduced rate; reconnect with fewer subscriptions or a faster link"));
                BeginClose(WebSocketCloseStatus.PolicyViolation, "slow consumer");
                break;
        }
    }

    /// <summary>
    /// All the time writes were pending, the one pending now included. The pending write's start and the total are read
    /// as one pair (a seqlock with <see cref="EndPass"/>), so a write that ends meanwhile is not missed, and counted twice
    /// for no more than the instant between its end's clock read and the seqlock (the next look gives it back). A write
    /// that starts meanwhile is seen at its start or not at all: either way it has been pending ~0.
    /// </summary>
    private long BusyTicks(long now)
    {
        var spin = new SpinWait();
        while (true)
        {
            var version = Volatile.Read(ref _busyVersion);
            if ((version & 1) == 0)
            {
                var started = Volatile.Read(ref _writeStartedAt);
                var busy = Volatile.Read(ref _busyTicks);
                if (Volatile.Read(ref _busyVersion) == version)
                {
                    return busy + (started == 0 ? 0 : Math.Max(0, now - started));
                }
            }

            spin.SpinOnce();
        }
    }

    /// <summary>
    /// Pass only: whether this pass writes prices. Always at full rate, and once a close is requested; downsampled,
    /// only when the interval since the last round is over (<paramref name="roundAt"/>: now; 0 at full rate). Too
    /// early, the marks stay (conflating as ever, so the newest value is what goes out) and a timer wakes a pass
    /// when the round is due: the last value is always delivered.
    /// </summary>
    private bool PricesDue(out long roundAt)
    {
        roundAt = 0;
        _pricesDeferred = false;
        Volatile.Write(ref _roundFired, 0);
        if (!_downsampled || Volatile.Read(ref _close) is not null)
        {
            return true;
        }

        var now = _services.Time.GetTimestamp();
        if (now >= _nextRoundAt)
        {
            roundAt = now;
            return true;
        }

        _pricesDeferred = true;
        ArmRoundTimer(_nextRoundAt - now);
        return false;
    }

    /// <summary>Pass only, at its end: marked prices that a pass could write now (not held for a later round).</summary>
    private bool PricesWaiting() =>
        _ready.Any() && (!_pricesDeferred || !_downsampled || Volatile.Read(ref _roundFired) != 0 || _services.Time.GetTimestamp() >= _nextRoundAt);

    /// <summary>One-shot, re-armed by every early pass: a timer that fires early only costs one more early pass.</summary>
    private void ArmRoundTimer(long ticks)
    {
        var frequency = _services.Time.TimestampFrequency;
        var due = TimeSpan.FromTicks((long)Math.Ceiling(ticks * (double)TimeSpan.TicksPerSecond / frequency));
        if (_roundTimer is null)
        {
            _roundTimer = _services.Time.CreateTimer(static s => ((SocketSender)s!).OnRoundDue(), this, due, Timeout.InfiniteTimeSpan);
        }
        else
        {
            _roundTimer.Change(due, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>
    /// The timer may fire a little early (it rounds to milliseconds), even while the early pass that armed it is still
    /// running and so cannot be scheduled again: the flag makes that pass's end see the wake-up and schedule one more.
    /// </summary>
    private void OnRoundDue()
    {
        Interlocked.Exchange(ref _roundFired, 1);
        if (_ready.Any())
        {
            ScheduleSend();
        }
    }
}
