namespace PriceDaemon.Security;

/// <summary>
/// The arithmetic of a fixed window: <c>limit</c> permits from the first acquire until <c>window</c> later, then a
/// fresh window. No lock: <see cref="WindowRateLimiter"/> holds one around it for a user shared by connections, and a
/// user that is one connection (<see cref="ClientUser"/>) has only its receive loop to ask.
/// </summary>
internal struct FixedWindow
{
    private long _start; // when the current window opened (the first acquire of it)

    /// <summary>Permits taken in the current window; 0 once it has passed and been reset.</summary>
    public int Used { get; private set; }

    /// <summary>When the current window opened, in <see cref="TimeProvider.GetTimestamp"/> ticks.</summary>
    public readonly long Start => _start;

    /// <summary>
    /// Takes <paramref name="permits"/> if the window has room; false, with the time left in the window, if not.
    /// </summary>
    public bool TryAcquire(int permits, int limit, TimeSpan window, TimeProvider time, out TimeSpan retryAfter)
    {
        var now = time.GetTimestamp();
        if (Used > 0 && time.GetElapsedTime(_start, now) >= window)
        {
            Used = 0;
        }

        if (Used + permits <= limit)
        {
            if (Used == 0 && permits > 0)
            {
                _start = now;
            }

            Used += permits;
            retryAfter = TimeSpan.Zero;
            return true;
        }

        retryAfter = window - time.GetElapsedTime(_start, now);
        return false;
    }
}
