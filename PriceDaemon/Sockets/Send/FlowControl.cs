namespace PriceDaemon.Sockets.Send;

/// <summary>What <see cref="FlowControl.Observe"/> decided for a socket at one look.</summary>
internal enum FlowVerdict
{
    None,

    /// <summary>Behind for the warn time: tell the client (<c>slow_consumer</c> warning) and downsample it.</summary>
    Warn,

    /// <summary>Downsampled and kept up for the recover time: back to full rate, and tell the client.</summary>
    Clear,

    /// <summary>Downsampled and still behind for the close time: it cannot keep up even at the lower rate.</summary>
    Close,
}

/// <summary>The thresholds of <see cref="FlowControl"/>, in <see cref="TimeProvider.GetTimestamp"/> ticks; one for all sockets.</summary>
internal sealed class FlowLimits
{
    public FlowLimits(LimitsOptions limits, TimeProvider time)
    {
        var second = time.TimestampFrequency;
        Enabled = limits.SlowConsumerWarnSeconds > 0;
        WarnTicks = limits.SlowConsumerWarnSeconds * second;
        RecoverTicks = limits.SlowConsumerRecoverSeconds * second;
        CloseTicks = limits.SlowConsumerSeconds * second;
        IntervalTicks = limits.SlowConsumerIntervalMs * second / 1000;
    }

    /// <summary>Flow control is on (<c>Limits:SlowConsumerWarnSeconds</c> above 0).</summary>
    public bool Enabled { get; }

    public long WarnTicks { get; }

    public long RecoverTicks { get; }

    /// <summary>Behind this long while downsampled closes the socket (<c>Limits:SlowConsumerSeconds</c>).</summary>
    public long CloseTicks { get; }

    /// <summary>A downsampled socket's minimum interval per instrument.</summary>
    public long IntervalTicks { get; }
}

/// <summary>
/// The slow-consumer state machine of one socket: full rate → (behind for the warn time) downsampled → (kept up
/// for the recover time) full rate again, or → (still behind for the close time) closed. It is looked at about once
/// a second by the session sweeper with how long the socket's writes were pending since the last look; a look at
/// which writes were pending for at least half of the elapsed time is "behind". Half, not all: a socket read at a
/// steady rate below what it is sent completes a write now and then, yet is pending most of the time, while one
/// that keeps up has its writes taken by the kernel at once and is almost never pending.
/// </summary>
/// <remarks>
/// A mutable struct held inline by its sender (no object per idle socket); only the sweeper touches it. Downsampling
/// restarts the "behind" clock, so a socket is closed only after the close time spent behind at the lower rate,
/// never for the time it was behind at full rate.
/// </remarks>
internal struct FlowControl
{
    private long _lastAt; // when the previous look was; 0 before the first
    private long _lastBusy; // the busy total it saw
    private long _behindSince; // 0 while not behind
    private long _keptUpSince; // 0 while behind

    /// <param name="start">When the socket opened: the first look counts from there (a default instance: from that look).</param>
    public FlowControl(long start)
    {
        _lastAt = start;
    }

    /// <summary>The socket is downsampled.</summary>
    public bool Downsampled { get; private set; }

    /// <summary>
    /// One look. <paramref name="busyTotal"/> is the socket's pending-write time so far (including the write pending
    /// now); only its growth since the last look counts. Without a start, the first look only takes the baseline.
    /// </summary>
    public FlowVerdict Observe(long now, long busyTotal, FlowLimits limits)
    {
        if (_lastAt == 0)
        {
            (_lastAt, _lastBusy) = (now, busyTotal);
            return FlowVerdict.None;
        }

        var elapsed = now - _lastAt;
        if (elapsed <= 0)
        {
            return FlowVerdict.None;
        }

        var busy = busyTotal - _lastBusy;
        var since = _lastAt;
        (_lastAt, _lastBusy) = (now, busyTotal);
        var behind = busy * 2 >= elapsed;
        if (behind)
        {
            _keptUpSince = 0;
            _behindSince = _behindSince == 0 ? since : _behindSince;
        }
        else
        {
            _behindSince = 0;
            _keptUpSince = _keptUpSince == 0 ? since : _keptUpSince;
        }

        if (!Downsampled)
        {
            if (behind && now - _behindSince >= limits.WarnTicks)
            {
                Downsampled = true;
                _behindSince = now; // the close time counts from here: behind at the lower rate
                return FlowVerdict.Warn;
            }

            return FlowVerdict.None;
        }

        if (behind && now - _behindSince >= limits.CloseTicks)
        {
            return FlowVerdict.Close;
        }

        if (!behind && now - _keptUpSince >= limits.RecoverTicks)
        {
            Downsampled = false;
            return FlowVerdict.Clear;
        }

        return FlowVerdict.None;
    }
}
