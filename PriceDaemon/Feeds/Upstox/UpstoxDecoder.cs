using Google.Protobuf;
using PriceDaemon.Feeds.Upstox.Proto;
using PriceDaemon.Instruments;

namespace PriceDaemon.Feeds.Upstox;

/// <summary>
/// Turns one <c>FeedResponse</c> frame into ticks. Owned by one connection's receive loop; not thread-safe.
/// Volume: Upstox's <c>ltpc</c> mode carries only the last trade's quantity and samples trades rather than
/// listing each one, so summing it would invent a volume; ticks then carry the last known cumulative volume
/// (from <c>full</c> mode's <c>vtt</c>, or the cache). <c>full</c> mode carries the day's volume (<c>vtt</c>).
/// </summary>
internal sealed partial class UpstoxDecoder
{
    private const int MaxLoggedUnknownKeys = 100;

    private readonly InstrumentRegistry _instruments;
    private readonly FeedMetrics _metrics;
    private readonly long[] _volumes;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HashSet<string> _loggedUnknown = new(StringComparer.Ordinal);
    private readonly Pipeline.DepthIngest? _depth;

    public UpstoxDecoder(InstrumentRegistry instruments, FeedMetrics metrics, long[] volumes, TimeProvider time, ILogger logger, Pipeline.DepthIngest? depth = null)
    {
        _depth = depth;
        _instruments = instruments;
        _metrics = metrics;
        _volumes = volumes;
        _time = time;
        _logger = logger;
    }

    /// <summary>
    /// Decodes <paramref name="frame"/>, appending a tick per known instrument with a price to <paramref name="ticks"/>.
    /// Returns the response (for its type and market info), or null when the frame is not a FeedResponse.
    /// </summary>
    public FeedResponse? Decode(ReadOnlySpan<byte> frame, long receivedTimestamp, List<Tick> ticks)
    {
        FeedResponse response;
        try
        {
            // Unknown fields are kept aside by the parser, so a newer schema on Upstox's side still decodes.
            response = FeedResponse.Parser.ParseFrom(frame);
        }
        catch (InvalidProtocolBufferException ex)
        {
            Interlocked.Increment(ref _metrics.MalformedFrames);
            LogMalformed(_logger, frame.Length, ex.Message);
            return null;
        }

        foreach (var (key, feed) in response.Feeds)
        {
            if (!_instruments.TryGet(key, out var instrument))
            {
                Interlocked.Increment(ref _metrics.UnknownInstruments);
                if (_loggedUnknown.Count < MaxLoggedUnknownKeys && _loggedUnknown.Add(key))
                {
                    LogUnknownInstrument(_logger, key);
                }

                continue;
            }

            var (ltpc, volume) = feed.FeedUnionCase switch
            {
                Feed.FeedUnionOneofCase.Ltpc => (feed.Ltpc, 0L),
                Feed.FeedUnionOneofCase.FullFeed => feed.FullFeed.FullFeedUnionCase switch
                {
                    FullFeed.FullFeedUnionOneofCase.MarketFF => (feed.FullFeed.MarketFF.Ltpc, feed.FullFeed.MarketFF.Vtt),
                    FullFeed.FullFeedUnionOneofCase.IndexFF => (feed.FullFeed.IndexFF.Ltpc, 0L),
                    _ => (null, 0L),
                },
                Feed.FeedUnionOneofCase.FirstLevelWithGreeks => (feed.FirstLevelWithGreeks.Ltpc, feed.FirstLevelWithGreeks.Vtt),
                _ => (null, 0L),
            };

            // An instrument that has not traded yet today arrives with ltp 0: there is no price to show.
            if (ltpc is null || !double.IsFinite(ltpc.Ltp) || ltpc.Ltp <= 0)
            {
                continue;
            }

            if (volume > 0)
            {
                _volumes[instrument.Id] = volume;
            }

            var timeMs = ltpc.Ltt > 0 ? ltpc.Ltt : response.CurrentTs > 0 ? response.CurrentTs : _time.GetUtcNow().ToUnixTimeMilliseconds();
            var previousClose = double.IsFinite(ltpc.Cp) && ltpc.Cp > 0 ? ltpc.Cp : 0;
            ticks.Add(new Tick(instrument.Id, ltpc.Ltp, _volumes[instrument.Id], timeMs * 1000, receivedTimestamp, PriceSource.Live, previousClose));
            if (feed.FeedUnionCase == Feed.FeedUnionOneofCase.FullFeed && feed.FullFeed.MarketFF?.MarketLevel is { BidAskQuote.Count: > 0 } level)
            {
                // The book's time: Upstox stamps a full feed message once, at the message (currentTs), not per quote.
                var bookMs = response.CurrentTs > 0 ? response.CurrentTs : timeMs;
                _depth?.Write(Book(instrument.Id, level, bookMs * 1000, receivedTimestamp));
            }
        }

        return response;
    }

    /// <summary>
    /// <c>full</c> mode's 5 levels or <c>full_d30</c>'s 30: each <c>Quote</c> pairs the bid and the ask of one level.
    /// Upstox V3 quotes carry no order count, so every level says 0 orders.
    /// </summary>
    internal static DepthBook Book(int instrumentId, MarketLevel level, long timeUs, long receivedTimestamp)
    {
        var quotes = level.BidAskQuote;
        var bids = DepthBook.Side(quotes.Select(static q => new DepthLevel(q.BidP, q.BidQ, 0)), bids: true);
        var asks = DepthBook.Side(quotes.Select(static q => new DepthLevel(q.AskP, q.AskQ, 0)), bids: false);
        return new DepthBook(instrumentId, bids, asks, timeUs, receivedTimestamp, PriceSource.Live);
    }

    [LoggerMessage(EventId = 122, Level = LogLevel.Warning, Message = "Upstox sent a frame of {Bytes} bytes that is not a FeedResponse; skipped ({Reason})")]
    private static partial void LogMalformed(ILogger logger, int bytes, string reason);

    [LoggerMessage(EventId = 123, Level = LogLevel.Information, Message = "Upstox sent prices for '{Key}', which is not in the instrument universe; ignored (counted in pricedaemon.feed.unknown_instruments)")]
    private static partial void LogUnknownInstrument(ILogger logger, string key);
}
