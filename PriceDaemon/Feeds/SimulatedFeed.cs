using System.Threading.Channels;
using Microsoft.Extensions.Options;
using PriceDaemon.Instruments;

namespace PriceDaemon.Feeds;

/// <summary>
/// An Upstox-like feed that needs no network: every instrument starts at its reference price (the
/// "initial feed"), then ticks at a random interval in [MinIntervalMs, MaxIntervalMs], moving at most
/// ±MaxMovePercent per tick, rounded to the NSE tick size of 0.05, with a growing cumulative volume.
/// After a restart it goes on from the restored prices instead of jumping back to the reference prices.
/// It can drop out on purpose (<see cref="SimulatedFeedOptions.OutageEverySeconds"/>) to show the stale path.
/// </summary>
internal sealed partial class SimulatedFeed : IFeedSource
{
    private const double TickSize = 0.05;
    private const string ConnectedMessage = FeedStatus.ConnectedMessage + " (simulated feed)";

    private readonly InstrumentRegistry _instruments;
    private readonly SimulatedFeedOptions _options;
    private readonly FeedStatus _status;
    private readonly Pipeline.PriceCache _cache;
    private readonly TimeProvider _time;
    private readonly ILogger<SimulatedFeed> _logger;
    private readonly Pipeline.DepthStage? _depthStage;
    private readonly Pipeline.DepthIngest? _depth;
    private Random _bookRandom = new(0);

    public SimulatedFeed(
        InstrumentRegistry instruments,
        IOptions<FeedOptions> options,
        FeedStatus status,
        Pipeline.PriceCache cache,
        TimeProvider time,
        ILogger<SimulatedFeed> logger,
        Pipeline.DepthStage? depthStage = null,
        Pipeline.DepthIngest? depth = null)
    {
        _depthStage = depthStage;
        _depth = depth;
        _instruments = instruments;
        _options = options.Value.Simulated;
        _status = status;
        _cache = cache;
        _time = time;
        _logger = logger;
    }

    private Random _bursts = new(0); // bursts draw from their own sequence, so they leave a seed's walk as it was

    public async Task RunAsync(ChannelWriter<Tick> ticks, CancellationToken stoppingToken)
    {
        var seed = _options.Seed ?? Random.Shared.Next();
        var random = new Random(seed);
        // Books draw from their own generator: a seed gives the same price walk whether or not anyone watches depth.
        _bookRandom = new Random(seed ^ 0x5eed);
        _bursts = new Random(unchecked(seed * 31 + 7));
        var count = _instruments.Count;
        var prices = new double[count];
        var volumes = new long[count];
        var due = new PriorityQueue<int, long>(count);
        var start = _time.GetTimestamp();

        // The feed's own clock stops during an outage, so the tick schedule resumes where it paused.
        long pausedMs = 0;
        long ElapsedMs() => (long)_time.GetElapsedTime(start).TotalMilliseconds - pausedMs;
        var outageEveryMs = _options.OutageEverySeconds * 1000L;
        var outageMs = _options.OutageSeconds * 1000L;
        var nextOutage = outageEveryMs > 0 && outageMs > 0 ? outageEveryMs : long.MaxValue;

        LogStarting(count, seed);
        _status.Report(FeedState.Connected, ConnectedMessage);

        for (var id = 0; id < count; id++)
        {
            var known = _cache.TryGetValues(id, out var cached);
            var volume = random.Next(1_000, 100_000); // drawn either way: a seed gives the same walk with or without storage
            prices[id] = known ? cached.LastPrice : _instruments[id].ReferencePrice;
            volumes[id] = known ? cached.Volume : volume;
            await WriteAsync(ticks, id, prices[id], volumes[id], stoppingToken).ConfigureAwait(false);
            due.Enqueue(id, NextInterval(random));
        }

        if (_options.MessagesPerSecond > 0)
        {
            await RunGroupedAsync(ticks, random, prices, volumes, stoppingToken).ConfigureAwait(false);
            return;
        }

        using var delay = new Pipeline.ReusableDelay(_time, stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            if (ElapsedMs() >= nextOutage)
            {
                LogOutage(_options.OutageSeconds);
                _status.Report(FeedState.Disconnected, FeedStatus.DisconnectedMessage);
                await delay.WaitAsync(TimeSpan.FromMilliseconds(outageMs)).ConfigureAwait(false);
                pausedMs += outageMs;
                nextOutage += outageEveryMs;
                _status.Report(FeedState.Connected, ConnectedMessage);
            }

            var elapsedMs = ElapsedMs();
            while (due.TryPeek(out var id, out var at) && at <= elapsedMs)
            {
                due.Dequeue();
                Move(random, prices, volumes, id);
                await WriteAsync(ticks, id, prices[id], volumes[id], stoppingToken).ConfigureAwait(false);
                due.Enqueue(id, at + NextInterval(random));
            }

            if (due.TryPeek(out _, out var next))
            {
                var wait = Math.Min(next, nextOutage) - ElapsedMs();
                if (wait > 0)
                {
                    await delay.WaitAsync(TimeSpan.FromMilliseconds(wait)).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>
    /// Upstox's shape: a message every 1/<see cref="SimulatedFeedOptions.MessagesPerSecond"/> s carrying a random
    /// set of instruments, all stamped with the same receive time, written into the pipeline back to back. A
    /// message is due at a fixed rate from the start, so a slow write delays the next one rather than dropping it.
    /// </summary>
    private async Task RunGroupedAsync(ChannelWriter<Tick> ticks, Random random, double[] prices, long[] volumes, CancellationToken stoppingToken)
    {
        var count = prices.Length;
        var order = Enumerable.Range(0, count).ToArray();
        var min = Math.Min(_options.InstrumentsPerMessageMin, count);
        var max = Math.Min(_options.InstrumentsPerMessageMax, count);
        var periodTicks = _time.TimestampFrequency / _options.MessagesPerSecond;
        var next = _time.GetTimestamp();
        using var delay = new Pipeline.ReusableDelay(_time, stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            next += periodTicks;
            var wait = _time.GetElapsedTime(_time.GetTimestamp(), next);
            if (wait > TimeSpan.Zero)
            {
                await delay.WaitAsync(wait).ConfigureAwait(false);
            }

            // A partial shuffle picks the message's instruments without repeats.
            var size = random.Next(min, max + 1);
            var exchangeTime = UnixMicroseconds(_time.GetUtcNow());
            var received = _time.GetTimestamp();
            for (var i = 0; i < size; i++)
            {
                var pick = random.Next(i, count);
                (order[i], order[pick]) = (order[pick], order[i]);
                var id = order[i];
                Move(random, prices, volumes, id);
                var tick = new Tick(id, prices[id], volumes[id], exchangeTime, received, PriceSource.Simulated);
                if (!ticks.TryWrite(tick))
                {
                    await ticks.WriteAsync(tick, stoppingToken).ConfigureAwait(false);
                }

                WriteBook(tick);
            }
        }
    }

    /// <summary>One random step of at most ±MaxMovePercent, on the NSE tick size, with more traded volume.</summary>
    private void Move(Random random, double[] prices, long[] volumes, int id)
    {
        var move = ((random.NextDouble() * 2) - 1) * _options.MaxMovePercent / 100.0;
        var price = Math.Round(prices[id] * (1 + move) / TickSize) * TickSize;
        prices[id] = Math.Round(Math.Max(price, TickSize), 2);
        volumes[id] += random.Next(1, 500);
        if (_options.VolumeBurstEveryTicks > 0 && _bursts.Next(_options.VolumeBurstEveryTicks) == 0)
        {
            volumes[id] += _bursts.Next(40_000, 120_001); // a block trade: what the unusual-volume alert is for
        }
    }

    internal static long UnixMicroseconds(DateTimeOffset time) => (time.UtcTicks - DateTime.UnixEpoch.Ticks) / 10;

    private long NextInterval(Random random) => random.Next(_options.MinIntervalMs, _options.MaxIntervalMs + 1);

    private ValueTask WriteAsync(ChannelWriter<Tick> ticks, int id, double price, long volume, CancellationToken ct)
    {
        var tick = new Tick(id, price, volume, UnixMicroseconds(_time.GetUtcNow()), _time.GetTimestamp(), PriceSource.Simulated);
        WriteBook(tick);
        return ticks.TryWrite(tick) ? ValueTask.CompletedTask : ticks.WriteAsync(tick, ct);
    }

    /// <summary>A fresh book around the tick's price, for instruments whose depth or book some client watches (or all: BooksForAll).</summary>
    private void WriteBook(in Tick tick)
    {
        if (_depth is not null && (_options.BooksForAll || (_depthStage is not null && _depthStage.IsWanted(tick.InstrumentId))))
        {
            _depth.Write(Book(_bookRandom, tick.InstrumentId, tick.LastPrice, tick.ExchangeTimeUs, tick.ReceivedTimestamp));
        }
    }

    /// <summary>
    /// A consistent book around <paramref name="price"/> on the 0.05 tick: a spread of one or two ticks with the last
    /// price inside it, then 20-30 levels a side walking away from it, mostly a tick apart, sometimes two (a level that
    /// vanished), with sizes and order counts drawn afresh each time, so the ladder moves.
    /// </summary>
    internal static DepthBook Book(Random random, int instrumentId, double price, long timeUs, long receivedTimestamp)
    {
        var last = (long)Math.Round(price / TickSize);
        var spread = random.Next(1, 3);
        var bestBid = Math.Max(1, last - random.Next(0, spread + 1));
        var bids = Side(random, bestBid, -1);
        var asks = Side(random, bestBid + spread, +1);
        return new DepthBook(instrumentId, bids, asks, timeUs, receivedTimestamp, PriceSource.Simulated);
    }

    private static DepthLevel[] Side(Random random, long bestTicks, int direction)
    {
        var levels = new List<DepthLevel>(DepthBook.MaxLevels);
        var count = random.Next(20, DepthBook.MaxLevels + 1);
        var ticks = bestTicks;
        for (var i = 0; i < count && ticks > 0; i++)
        {
            var lots = random.Next(1, 20 + (i * 4)); // deeper levels hold more
            var quantity = lots * 25L;
            var orders = random.Next(1, Math.Min(lots, 40) + 1);
            levels.Add(new DepthLevel(Math.Round(ticks * TickSize, 2), quantity, orders));
            ticks += direction * (random.NextDouble() < 0.2 ? 2 : 1);
        }

        return [.. levels];
    }

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Simulated feed started: {Count} instruments, seed {Seed}")]
    private partial void LogStarting(int count, int seed);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "Simulated feed outage: no ticks for {Seconds} s (Feed:Simulated:OutageEverySeconds)")]
    private partial void LogOutage(int seconds);
}
