using System.Threading.Channels;
using Microsoft.Extensions.Options;
using PriceDaemon.Instruments;

namespace PriceDaemon.Feeds.Replay;

/// <summary>
/// Plays a tick file (<see cref="TickFile"/>) into the pipeline, keeping the recorded gaps between ticks divided
/// by <see cref="ReplayFeedOptions.Speed"/> (0 = no waiting), optionally looping. Ticks keep their recorded
/// timestamps and say <c>source: replay</c>, so a replayed day never pretends to be today's market. The file
/// is streamed, not loaded, so a whole day's recording replays in constant memory.
/// </summary>
internal sealed partial class ReplayFeed : IFeedSource
{
    private const int MaxLoggedBadLines = 20;

    private readonly InstrumentRegistry _instruments;
    private readonly ReplayFeedOptions _options;
    private readonly FeedStatus _status;
    private readonly FeedMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger<ReplayFeed> _logger;
    private readonly Pipeline.DepthIngest? _depth;

    public ReplayFeed(InstrumentRegistry instruments, IOptions<FeedOptions> options, FeedStatus status, FeedMetrics metrics, TimeProvider time, ILogger<ReplayFeed> logger, Pipeline.DepthIngest? depth = null)
    {
        _depth = depth;
        _instruments = instruments;
        _options = options.Value.Replay;
        _status = status;
        _metrics = metrics;
        _time = time;
        _logger = logger;
    }

    public async Task RunAsync(ChannelWriter<Tick> ticks, CancellationToken stoppingToken)
    {
        var path = _options.Path;
        var jsonLines = TickFile.IsJsonLines(path);
        var badLines = 0;
        var unknown = new HashSet<string>(StringComparer.Ordinal);
        LogStarting(path, _options.Speed, _options.Loop);
        _status.Report(FeedState.Connected, $"{FeedStatus.ConnectedMessage} (replay of {Path.GetFileName(path)})");
        long played;
        do
        {
            played = 0;
            long? firstUs = null;
            long lastOffsetUs = 0;
            var start = _time.GetTimestamp();
            using var reader = new StreamReader(path);
            var lineNumber = 0;
            while (await reader.ReadLineAsync(stoppingToken).ConfigureAwait(false) is { } line)
            {
                lineNumber++;
                TickRecord? parsed;
                try
                {
                    parsed = TickFile.Parse(line, jsonLines);
                }
                catch (FormatException ex)
                {
                    Interlocked.Increment(ref _metrics.ReplaySkippedLines);
                    if (++badLines <= MaxLoggedBadLines)
                    {
                        LogBadLine(path, lineNumber, ex.Message);
                    }

                    continue;
                }

                if (parsed is not { } record)
                {
                    continue;
                }

                if (!_instruments.TryGet(record.InstrumentKey, out var instrument))
                {
                    Interlocked.Increment(ref _metrics.ReplaySkippedLines);
                    if (unknown.Add(record.InstrumentKey) && unknown.Count <= MaxLoggedBadLines)
                    {
                        LogUnknownInstrument(path, lineNumber, record.InstrumentKey);
                    }

                    continue;
                }

                if (_options.Speed > 0)
                {
                    // Offsets only grow: a line stamped earlier than the one before it plays at once.
                    firstUs ??= record.TimeUs;
                    lastOffsetUs = Math.Max(lastOffsetUs, record.TimeUs - firstUs.Value);
                    var wait = TimeSpan.FromMicroseconds(lastOffsetUs / _options.Speed) - _time.GetElapsedTime(start);
                    if (wait > TimeSpan.Zero)
                    {
                        await Task.Delay(wait, _time, stoppingToken).ConfigureAwait(false);
                    }
                }

                if (record.IsDepth)
                {
                    // A recorded book: the depth and book channels replay it as they showed it.
                    _depth?.Write(new DepthBook(instrument.Id, record.Bids!, record.Asks!, record.TimeUs, _time.GetTimestamp(), PriceSource.Replay));
                    played++;
                    continue;
                }

                var tick = new Tick(instrument.Id, record.LastPrice, record.Volume, record.TimeUs, _time.GetTimestamp(), PriceSource.Replay);
                if (!ticks.TryWrite(tick))
                {
                    await ticks.WriteAsync(tick, stoppingToken).ConfigureAwait(false);
                }

                played++;
            }

            LogPass(path, played);
        }
        while (_options.Loop && played > 0 && !stoppingToken.IsCancellationRequested);

        _status.Report(FeedState.Disconnected, "Replay finished: showing the last replayed prices");
    }

    [LoggerMessage(EventId = 150, Level = LogLevel.Information, Message = "Replay feed started: {Path} at speed {Speed} (0 = as fast as possible), loop {Loop}")]
    private partial void LogStarting(string path, double speed, bool loop);

    [LoggerMessage(EventId = 151, Level = LogLevel.Warning, Message = "Replay {Path}:{Line}: skipped, {Reason}")]
    private partial void LogBadLine(string path, int line, string reason);

    [LoggerMessage(EventId = 152, Level = LogLevel.Warning, Message = "Replay {Path}:{Line}: '{Key}' is not in the instrument universe; its lines are skipped")]
    private partial void LogUnknownInstrument(string path, int line, string key);

    [LoggerMessage(EventId = 153, Level = LogLevel.Information, Message = "Replay of {Path} reached the end: {Count} ticks played")]
    private partial void LogPass(string path, long count);
}
