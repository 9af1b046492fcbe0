namespace PriceDaemon.Pipeline;

/// <summary>
/// The throttle's supply of price frames. A frame the cache replaces is retired here, tagged with an epoch of the
/// cache's <see cref="FrameEpochs"/>; <see cref="Rent"/> hands it out again only once no read scope can still hold it
/// and fan-out has taken it from its channel. In steady state that recycles a few frames per instrument and
/// allocates nothing. Single-threaded: only the throttle stage (the one writer of the cache) calls it.
/// <para>
/// Size. While a reader stays in a scope (or fan-out is behind) nothing retired after it can be reused, so the pool
/// makes frames and the queue of retired ones grows; once the reader leaves, that backlog would be recycled in order
/// for ever, the pool never smaller than its worst moment. So when more than twice <see cref="Target"/> frames wait
/// here, each reuse also drops the next reusable frame to the collector, until the backlog is back under it; and the
/// counts are in <see cref="PipelineMetrics"/> (<c>pricedaemon_pool_*</c>), with a warning (<see cref="Growing"/>) once
/// more than four times the target wait, which only a reader or fan-out stuck for that long causes.
/// </para>
/// </summary>
internal sealed class PriceFramePool
{
    private readonly FrameEpochs _epochs;
    private readonly PipelineMetrics? _metrics;
    // Retired frames in retirement order: tags only grow, so the head is always the first to become reusable.
    private readonly Queue<PriceFrame> _retired = new(1024);
    private long _safeBelow;
    private bool _warned;

    /// <param name="instruments">The instrument count: the cache holds one frame each, and <see cref="Target"/> follows it.</param>
    public PriceFramePool(FrameEpochs epochs, int instruments = 0, PipelineMetrics? metrics = null)
    {
        _epochs = epochs;
        _metrics = metrics;
        Target = Math.Max(64, instruments);
    }

    /// <summary>Retired frames the pool keeps without trimming: the instrument count, at least 64.</summary>
    public int Target { get; }

    /// <summary>Frames made since start; flat in steady state.</summary>
    public long Created { get; private set; }

    /// <summary>Reusable frames dropped to the collector because the backlog was above twice the target.</summary>
    public long Dropped { get; private set; }

    /// <summary>Frames waiting for their grace period (or reusable, in order behind the head).</summary>
    public int Retired => _retired.Count;

    /// <summary>
    /// Set once more than four times <see cref="Target"/> frames wait (a reader or fan-out stuck), for the caller to log;
    /// cleared once the backlog is back under the target, so a later incident is reported again.
    /// </summary>
    public bool Growing { get; private set; }

    /// <summary>
    /// A frame to fill, reused when the oldest retired one is free. <paramref name="fannedOut"/>: how many frames
    /// fan-out has taken from its channel; a frame given a later ticket may still be read there (ticket 0: never
    /// written to fan-out).
    /// </summary>
    public PriceFrame Rent(long fannedOut)
    {
        if (_retired.TryPeek(out var oldest) && Reusable(oldest, fannedOut))
        {
            _retired.Dequeue();
            if (_retired.Count > 2 * Target && _retired.TryPeek(out var next) && Reusable(next, fannedOut))
            {
                // One more per reuse: the backlog shrinks by one frame per emitted update, no pause.
                _retired.Dequeue();
                Dropped++;
                Publish();
            }

            return oldest;
        }

        Created++;
        Publish();
        return PriceFrame.CreatePooled();
    }

    /// <summary>
    /// <paramref name="frame"/> has just left the cache (the replacing frame is published). Frames the pool did not
    /// make (restored from storage, warm start) are left to the garbage collector.
    /// </summary>
    public void Retire(PriceFrame frame)
    {
        if (frame.Pooled)
        {
            frame.RetiredAt = _epochs.Retire();
            _retired.Enqueue(frame);
            if (_retired.Count > 4 * Target)
            {
                Growing = !_warned;
                _warned = true;
            }
            else if (_warned && _retired.Count <= Target)
            {
                _warned = false;
            }

            if (_metrics is not null)
            {
                _metrics.PoolFramesRetired = _retired.Count;
            }
        }
    }

    /// <summary>The caller has logged <see cref="Growing"/>.</summary>
    public void Reported() => Growing = false;

    private bool Reusable(PriceFrame frame, long fannedOut)
    {
        if (frame.Ticket > fannedOut)
        {
            return false;
        }

        if (frame.RetiredAt >= _safeBelow)
        {
            _safeBelow = _epochs.SafeBelow();
        }

        return frame.RetiredAt < _safeBelow;
    }

    private void Publish()
    {
        if (_metrics is not null)
        {
            _metrics.PoolFramesCreated = Created;
            _metrics.PoolFramesDropped = Dropped;
            _metrics.PoolFramesRetired = _retired.Count;
        }
    }
}
