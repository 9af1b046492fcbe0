namespace PriceDaemon.Feeds;

/// <summary>Where a price came from; written into every frame as <c>data.source</c>.</summary>
public enum PriceSource : byte
{
    Live,
    Simulated,
    Replay,
    Stored,
}

/// <summary>
/// One trade observation from a feed. A small value type: the ingest channel holds these by value,
/// so ingesting a tick allocates nothing.
/// </summary>
/// <param name="InstrumentId">Dense id from <see cref="Instruments.InstrumentRegistry"/>.</param>
/// <param name="LastPrice">Last traded price; finite and positive.</param>
/// <param name="Volume">Cumulative traded volume for the day.</param>
/// <param name="ExchangeTimeUs">Exchange (or simulated) trade time, Unix microseconds UTC.</param>
/// <param name="ReceivedTimestamp">When the daemon received it, from <see cref="TimeProvider.GetTimestamp"/>.</param>
/// <param name="Source">Which kind of feed produced it.</param>
/// <param name="PreviousClose">
/// The previous day's close when the feed knows it (Upstox's <c>cp</c>); 0 keeps the close the pipeline already
/// has (stored, else the instrument's reference price) for <c>change_percent</c>.
/// </param>
public readonly record struct Tick(
    int InstrumentId,
    double LastPrice,
    long Volume,
    long ExchangeTimeUs,
    long ReceivedTimestamp,
    PriceSource Source,
    double PreviousClose = 0);
