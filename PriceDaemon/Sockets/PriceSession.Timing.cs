namespace PriceDaemon.Sockets;

/// <summary>The per-client latency breakdown: <c>"timing": true</c> on a price subscribe.</summary>
internal sealed partial class PriceSession
{
    /// <summary>
    /// A connection setting carried by any price subscribe: <c>true</c> turns <c>data.received_at</c> on for every price
    /// frame of this socket from now on (the snapshot of the same subscribe included), <c>false</c> turns it off, absent
    /// leaves it as it was. It is not a field of the subscription, so a client need not resubscribe to switch it.
    /// </summary>
    private void ApplyTiming(bool? timing)
    {
        if (timing is { } on)
        {
            _sender.Timing = on;
        }
    }
}
