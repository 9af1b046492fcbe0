namespace PriceDaemon.Feeds;

/// <summary>One price level of an order book side: the quantity resting at <see cref="Price"/> in <see cref="Orders"/> orders.</summary>
/// <param name="Orders">Orders at the level; 0 when the source does not say (Upstox V3 quotes carry no order count).</param>
public readonly record struct DepthLevel(double Price, long Quantity, int Orders);

/// <summary>
/// One snapshot of an instrument's order book from a feed: bids best (highest) first, asks best (lowest) first,
/// up to <see cref="MaxLevels"/> a side. A class, not part of <see cref="Tick"/>: the price path's value type stays
/// as small as it was, and a book is only built for instruments some client wants depth of. Immutable once handed
/// to <see cref="Pipeline.DepthIngest"/>.
/// </summary>
public sealed class DepthBook
{
    /// <summary>The deepest book any source gives (Upstox <c>full_d30</c>) and the <c>book</c> channel shows.</summary>
    public const int MaxLevels = 30;

    /// <summary>Levels a side on the <c>depth</c> channel (Upstox <c>full</c> mode's depth).</summary>
    public const int DepthLevels = 5;

    public DepthBook(int instrumentId, DepthLevel[] bids, DepthLevel[] asks, long exchangeTimeUs, long receivedTimestamp, PriceSource source)
    {
        InstrumentId = instrumentId;
        Bids = bids;
        Asks = asks;
        ExchangeTimeUs = exchangeTimeUs;
        ReceivedTimestamp = receivedTimestamp;
        Source = source;
    }

    public int InstrumentId { get; }

    /// <summary>Highest price first.</summary>
    public DepthLevel[] Bids { get; }

    /// <summary>Lowest price first.</summary>
    public DepthLevel[] Asks { get; }

    /// <summary>Exchange (or simulated) time of the book, Unix microseconds UTC.</summary>
    public long ExchangeTimeUs { get; }

    /// <summary>When the daemon received it (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    public long ReceivedTimestamp { get; }

    public PriceSource Source { get; }

    /// <summary>
    /// Keeps the valid levels of one side from a feed (finite positive price, positive quantity; Upstox pads an empty
    /// level with zeros), at most <see cref="MaxLevels"/>, sorted best first and without a repeated price.
    /// </summary>
    public static DepthLevel[] Side(IEnumerable<DepthLevel> levels, bool bids)
    {
        var kept = new List<DepthLevel>(MaxLevels);
        foreach (var level in levels)
        {
            if (double.IsFinite(level.Price) && level.Price > 0 && level.Quantity > 0 && level.Orders >= 0)
            {
                kept.Add(level);
            }
        }

        kept.Sort(bids ? static (a, b) => b.Price.CompareTo(a.Price) : static (a, b) => a.Price.CompareTo(b.Price));
        for (var i = kept.Count - 1; i > 0; i--)
        {
            if (kept[i].Price == kept[i - 1].Price)
            {
                kept.RemoveAt(i);
            }
        }

        return kept.Count > MaxLevels ? [.. kept.GetRange(0, MaxLevels)] : [.. kept];
    }
}
