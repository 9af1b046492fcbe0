using System.Buffers.Binary;
using System.Collections.Frozen;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using PriceDaemon.Candles;
using PriceDaemon.Instruments;

namespace PriceDaemon.Nats;

/// <summary>
/// Closed bars over JetStream, so that an edge started later serves the same history as the ingest: the ingest
/// publishes each bar it closes to one stream per interval (<c>PRICEDAEMON_CANDLES_1M</c>, ..., subject
/// <c>candles.1m.NSE_EQ.INE002A01018</c>, kept for the interval's retention); an edge, after it starts, reads each
/// stream from its own newest bar (all of it when its file is empty) into its file. Live bars still come from the
/// ticks every daemon receives: the stream is only history, and never on the tick path.
/// </summary>
internal static class NatsCandleStreams
{
    public const int PayloadBytes = 48;

    public static string Stream(int interval) => $"PRICEDAEMON_CANDLES_{CandleIntervals.Names[interval].ToUpperInvariant()}";

    public static string Subject(int interval, string instrumentKey) => $"candles.{CandleIntervals.Names[interval]}.{NatsSubjects.KvKey(instrumentKey)}";

    /// <summary>Start, open, high, low, close, volume: six little-endian 8-byte fields.</summary>
    public static byte[] Encode(in Bar bar)
    {
        var bytes = new byte[PayloadBytes];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteInt64LittleEndian(span, bar.StartUs);
        BinaryPrimitives.WriteDoubleLittleEndian(span[8..], bar.Open);
        BinaryPrimitives.WriteDoubleLittleEndian(span[16..], bar.High);
        BinaryPrimitives.WriteDoubleLittleEndian(span[24..], bar.Low);
        BinaryPrimitives.WriteDoubleLittleEndian(span[32..], bar.Close);
        BinaryPrimitives.WriteInt64LittleEndian(span[40..], bar.Volume);
        return bytes;
    }

    public static bool TryDecode(ReadOnlySpan<byte> span, out Bar bar)
    {
        bar = default;
        if (span.Length != PayloadBytes)
        {
            return false;
        }

        bar.StartUs = BinaryPrimitives.ReadInt64LittleEndian(span);
        bar.Open = BinaryPrimitives.ReadDoubleLittleEndian(span[8..]);
        bar.High = BinaryPrimitives.ReadDoubleLittleEndian(span[16..]);
        bar.Low = BinaryPrimitives.ReadDoubleLittleEndian(span[24..]);
        bar.Close = BinaryPrimitives.ReadDoubleLittleEndian(span[32..]);
        bar.Volume = BinaryPrimitives.ReadInt64LittleEndian(span[40..]);
        return bar.StartUs != 0;
    }

    /// <summary>The interval's retention in calendar time: trading days, with weekends, and a day to spare.</summary>
    public static TimeSpan MaxAge(CandleOptions options, int interval) =>
        TimeSpan.FromDays(Math.Ceiling(options.RetentionDays(interval) * 7 / 5.0) + 1);
}

/// <summary>The ingest's side: each closed bar queued (drop when full, counted) and published by one loop.</summary>
internal sealed partial class NatsCandlePublisher : BackgroundService, IClosedBarSink
{
    private readonly NatsLink _link;
    private readonly CandleOptions _options;
    private readonly ILogger<NatsCandlePublisher> _logger;
    private readonly Channel<(string Key, int Interval, Bar Bar)> _queue =
        Channel.CreateBounded<(string, int, Bar)>(new BoundedChannelOptions(65_536) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });

    internal long Published;
    internal long Dropped;

    public NatsCandlePublisher(NatsLink link, IOptions<CandleOptions> options, ILogger<NatsCandlePublisher> logger)
    {
        _link = link;
        _options = options.Value;
        _logger = logger;
    }

    public void Closed(string instrumentKey, int interval, in Bar bar)
    {
        if (!_queue.Writer.TryWrite((instrumentKey, interval, bar)))
        {
            Interlocked.Increment(ref Dropped);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await _link.ConnectAsync().WaitAsync(stoppingToken).ConfigureAwait(false);
        var js = new NatsJSContext(_link.Connection);
        var ready = new bool[CandleIntervals.Count];
        await foreach (var (key, interval, bar) in _queue.Reader.ReadAllAsync(stoppingToken).ConfigureAwait(false))
        {
            try
            {
                if (!ready[interval])
                {
                    await js.CreateOrUpdateStreamAsync(new StreamConfig(NatsCandleStreams.Stream(interval), [$"candles.{CandleIntervals.Names[interval]}.>"])
                    {
                        Storage = StreamConfigStorage.File,
                        MaxAge = NatsCandleStreams.MaxAge(_options, interval),
                        Description = $"PriceDaemon closed {CandleIntervals.Names[interval]} bars, for edges' history",
                    }, stoppingToken).ConfigureAwait(false);
                    ready[interval] = true;
                }

                var ack = await js.PublishAsync(NatsCandleStreams.Subject(interval, key), NatsCandleStreams.Encode(bar), cancellationToken: stoppingToken).ConfigureAwait(false);
                ack.EnsureSuccess();
                Interlocked.Increment(ref Published);
            }
            catch (Exception ex) when (ex is NatsJSException or NATS.Client.Core.NatsException or TimeoutException)
            {
                // History for edges only: a bar lost here is still in this daemon's file and in every running edge's.
                Interlocked.Increment(ref Dropped);
                LogPublishFailed(CandleIntervals.Names[interval], key, ex.Message);
            }
        }
    }

    [LoggerMessage(EventId = 940, Level = LogLevel.Warning, Message = "NATS: closed {Interval} bar of {Key} not published to the candle stream: {Error}")]
    private partial void LogPublishFailed(string interval, string key, string error);
}

/// <summary>
/// An edge's side: once connected, each interval's stream is read from the edge's own newest bar into its file, so a
/// late edge serves the ingest's history. Runs after start-up, not before ready: until it is done, history may be
/// short (the bars it lacks come in batches of 1,000).
/// </summary>
internal sealed partial class NatsCandleBackfill : BackgroundService
{
    private const int Batch = 1000;

    private readonly NatsLink _link;
    private readonly CandleService _candles;
    private readonly ILogger<NatsCandleBackfill> _logger;
    private readonly FrozenDictionary<string, string> _keys; // subject tail (KvKey) -> instrument key

    internal long Imported;

    public NatsCandleBackfill(NatsLink link, CandleService candles, InstrumentRegistry instruments, ILogger<NatsCandleBackfill> logger)
    {
        _link = link;
        _candles = candles;
        _logger = logger;
        _keys = instruments.All.ToFrozenDictionary(static i => NatsSubjects.KvKey(i.Key), static i => i.Key, StringComparer.Ordinal);
    }

    /// <summary>Completes when every stream has been read to its end (or could not be).</summary>
    public Task Completion => ExecuteTask ?? Task.CompletedTask;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await _link.ConnectAsync().WaitAsync(stoppingToken).ConfigureAwait(false);
        var js = new NatsJSContext(_link.Connection);
        for (var interval = 0; interval < CandleIntervals.Count; interval++)
        {
            try
            {
                var count = await ReadAsync(js, interval, stoppingToken).ConfigureAwait(false);
                LogBackfilled(count, CandleIntervals.Names[interval]);
            }
            catch (NatsJSApiException ex) when (ex.Error.Code == 404)
            {
                // No ingest has published bars of this interval yet: nothing to take.
            }
            catch (Exception ex) when (ex is NatsJSException or NATS.Client.Core.NatsException or TimeoutException or LiteDB.LiteException or IOException or InvalidDataException)
            {
                LogBackfillFailed(CandleIntervals.Names[interval], ex.Message);
            }
        }
    }

    private async Task<long> ReadAsync(NatsJSContext js, int interval, CancellationToken ct)
    {
        var newest = _candles.NewestStored(interval);
        var opts = newest is { } start
            ? new NatsJSOrderedConsumerOpts { DeliverPolicy = ConsumerConfigDeliverPolicy.ByStartTime, OptStartTime = DateTimeOffset.FromUnixTimeMilliseconds(start / 1000) }
            : new NatsJSOrderedConsumerOpts { DeliverPolicy = ConsumerConfigDeliverPolicy.All };
        var consumer = await js.CreateOrderedConsumerAsync(NatsCandleStreams.Stream(interval), opts, ct).ConfigureAwait(false);
        var prefix = $"candles.{CandleIntervals.Names[interval]}.";
        long total = 0;
        while (true)
        {
            var bars = new List<(string Key, int Interval, Bar Bar)>(Batch);
            var received = 0;
            await foreach (var msg in consumer.FetchNoWaitAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = Batch }, cancellationToken: ct).ConfigureAwait(false))
            {
                received++;
                if (msg.Subject.StartsWith(prefix, StringComparison.Ordinal) && _keys.TryGetValue(msg.Subject[prefix.Length..], out var key)
                    && NatsCandleStreams.TryDecode(msg.Data, out var bar))
                {
                    bars.Add((key, interval, bar));
                }
            }

            _candles.Import(bars);
            total += bars.Count;
            Interlocked.Add(ref Imported, bars.Count);
            if (received == 0)
            {
                return total;
            }
        }
    }

    [LoggerMessage(EventId = 941, Level = LogLevel.Information, Message = "NATS: {Count} closed {Interval} bars taken from the candle stream")]
    private partial void LogBackfilled(long count, string interval);

    [LoggerMessage(EventId = 942, Level = LogLevel.Warning, Message = "NATS: the {Interval} candle stream could not be read; history starts with this edge's own bars: {Error}")]
    private partial void LogBackfillFailed(string interval, string error);
}
