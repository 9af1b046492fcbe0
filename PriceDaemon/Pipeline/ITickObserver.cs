using PriceDaemon.Feeds;

namespace PriceDaemon.Pipeline;

/// <summary>
/// Sees every valid tick, on the throttle stage's thread, before the throttle merges any away: what must count
/// every trade (candles, alerts, volume) observes here rather than after coalescing. Runs on the tick path, so an
/// implementation does no I/O, takes no lock a socket thread holds for long, and allocates nothing per tick.
/// Register as a singleton <see cref="ITickObserver"/>; the stage calls them in registration order.
/// </summary>
public interface ITickObserver
{
    void Observe(in Tick tick);
}
