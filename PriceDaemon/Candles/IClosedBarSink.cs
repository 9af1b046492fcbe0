namespace PriceDaemon.Candles;

/// <summary>
/// Told of every bar the <see cref="CandleService"/> closes, on its thread, once per bar: an ingest publishes them for
/// edges to backfill from (Nats/NatsCandles.cs). Must not block.
/// </summary>
internal interface IClosedBarSink
{
    void Closed(string instrumentKey, int interval, in Bar bar);
}
