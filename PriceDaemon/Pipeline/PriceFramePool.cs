namespace PriceDaemon.Pipeline;

/// <summary>
/// The throttle's supply of price frames. A frame the cache replaces is retired here, tagged with an epoch of the
/// cache's <see cref="FrameEpochs"/>; <see cref="Rent"/> hands it out again only once no read scope can still hold it
/// and fan-out has taken it from its channel. In steady state that recycles a few frames per instrument and
/// allocates nothing. Single-threaded: only the throttle stage (the one writer of the cache) calls it.
/// </summary>
internal sealed class PriceFramePool
{
    private readonly FrameEpochs _epochs;
    // Retired frames in retirement order: tags only grow, so the head is always the first to become reusable.
    private readonly Queue<PriceFrame> _retired = new(1024);
    private long _safeBelow;

    public PriceFramePool(FrameEpochs epochs)
    {
        _epochs = epochs;
    }

    /// <summary>Frames made since start: the pool's size, which stops growing in steady state.</summary>
    public long Created { get; private set; }

    /// <summary>Frames waiting for their grace period.</summary>
    public int Retired => _retired.Count;

    /// <summary>
    /// A frame to fill, reused when the oldest retired one is free. <paramref name="fannedOut"/>: how many frames
    /// fan-out has taken from its channel; a frame given a later ticket may still be read there.
    /// </summary>
    public PriceFrame Rent(long fannedOut)
    {
        if (_retired.TryPeek(out var oldest) && oldest.Ticket <= fannedOut)
        {
            if (oldest.RetiredAt >= _safeBelow)
            {
                _safeBelow = _epochs.SafeBelow();
            }

            if (oldest.RetiredAt < _safeBelow)
            {
                return _retired.Dequeue();
            }
        }

        Created++;
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
        }
    }
}
