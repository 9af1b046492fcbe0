using System.Threading.RateLimiting;

namespace PriceDaemon.Security;

/// <summary>
/// A fixed-window limiter on the daemon's <see cref="TimeProvider"/>: <c>limit</c> permits from the first
/// acquire until <c>window</c> later, then a fresh window. The framework's <c>FixedWindowRateLimiter</c> keeps
/// its own clock and reports the whole window as Retry-After; this one reports the time actually left, and
/// tests drive it with a fake clock.
/// </summary>
internal sealed class WindowRateLimiter : RateLimiter
{
    private static readonly RateLimitLease _granted = new Lease(null);

    private readonly int _limit;
    private readonly TimeSpan _window;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private FixedWindow _current;
    private long _idleSince;

    public WindowRateLimiter(int limit, TimeSpan window, TimeProvider time)
    {
        _limit = limit;
        _window = window;
        _time = time;
        _idleSince = time.GetTimestamp();
    }

    /// <summary>How long every permit has been free (null while a window is open); idle limiters are forgotten.</summary>
    public override TimeSpan? IdleDuration
    {
        get
        {
            lock (_gate)
            {
                var now = _time.GetTimestamp();
                if (_current.Used > 0 && _time.GetElapsedTime(_current.Start, now) < _window)
                {
                    return null;
                }

                var since = _current.Used > 0 ? _current.Start + (long)(_window.TotalSeconds * _time.TimestampFrequency) : _idleSince;
                return now > since ? _time.GetElapsedTime(since, now) : TimeSpan.Zero;
            }
        }
    }

    public override RateLimiterStatistics? GetStatistics()
    {
        lock (_gate)
        {
            return new RateLimiterStatistics { CurrentAvailablePermits = Math.Max(0, _limit - _current.Used) };
        }
    }

    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        lock (_gate)
        {
            return _current.TryAcquire(permitCount, _limit, _window, _time, out var retryAfter) ? _granted : new Lease(retryAfter);
        }
    }

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken) =>
        ValueTask.FromResult(AttemptAcquireCore(permitCount));

    private sealed class Lease : RateLimitLease
    {
        private readonly TimeSpan? _retryAfter;

        public Lease(TimeSpan? retryAfter)
        {
            _retryAfter = retryAfter;
        }

        public override bool IsAcquired => _retryAfter is null;

        public override IEnumerable<string> MetadataNames => _retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            if (_retryAfter is { } retryAfter && metadataName == MetadataName.RetryAfter.Name)
            {
                metadata = retryAfter;
                return true;
            }

            metadata = null;
            return false;
        }
    }
}
