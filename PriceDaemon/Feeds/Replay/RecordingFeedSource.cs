using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using PriceDaemon.Instruments;

namespace PriceDaemon.Feeds.Replay;

/// <summary>
/// <c>Feed:Record:Path</c>: wraps the configured feed and appends every tick it produces to a tick file that
/// <c>Feed:Source=Replay</c> plays back. The file is written by its own loop behind a bounded queue, so a slow disk
/// never slows the feed: a tick that does not fit is counted (<c>pricedaemon.feed.record_dropped</c>) and logged.
/// </summary>
internal sealed partial class RecordingFeedSource : IFeedSource, IDisposable
{
    private const int QueueCapacity = 65_536;

    private readonly IFeedSource _inner;
    private readonly InstrumentRegistry _instruments;
    private readonly FeedMetrics _metrics;
    private readonly ILogger<RecordingFeedSource> _logger;
    private readonly string _path;
    private readonly bool _jsonLines;
    private readonly StreamWriter _file;
    private readonly Pipeline.DepthIngest? _depth;

    public RecordingFeedSource(IFeedSource inner, InstrumentRegistry instruments, IOptions<FeedOptions> options, FeedMetrics metrics, ILogger<RecordingFeedSource> logger, Pipeline.DepthIngest? depth = null)
    {
        _depth = depth;
        _inner = inner;
        _instruments = instruments;
        _metrics = metrics;
        _logger = logger;
        _path = options.Value.Record.Path;
        _jsonLines = TickFile.IsJsonLines(_path);
        try
        {
            // Opened here, while the host starts, so that an unusable path stops the daemon with its key's name.
            if (Path.GetDirectoryName(Path.GetFullPath(_path)) is { } folder)
            {
                Directory.CreateDirectory(folder);
            }

            var stream = new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.Read);
            _file = new StreamWriter(stream, new UTF8Encoding(false));
            if (stream.Length == 0 && !_jsonLines)
            {
                _file.WriteLine(TickFile.FormatComment);
                _file.WriteLine(TickFile.CsvHeader);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"Feed:Record:Path: cannot append to '{_path}': {ex.Message}", ex);
        }
    }

    public async Task RunAsync(ChannelWriter<Tick> ticks, CancellationToken stoppingToken)
    {
        var queue = Channel.CreateBounded<Recorded>(new BoundedChannelOptions(QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.DropWrite, // the live price path wins over the recording
            SingleReader = true,
            SingleWriter = false,
            AllowSynchronousContinuations = false,
        });
        LogRecording(_path);
        var writer = WriteLoopAsync(queue.Reader);
        // Books the feed hands to the depth stage are recorded between its trades, in the order they came.
        _depth?.AddTap(book =>
        {
            if (!queue.Writer.TryWrite(new Recorded(default, book)) && !queue.Reader.Completion.IsCompleted)
            {
                OnDropped();
            }
        });
        try
        {
            await _inner.RunAsync(new TeeWriter(ticks, queue.Writer, this), stoppingToken).ConfigureAwait(false);
        }
        finally
        {
            // Drains what is queued (bounded effort) so the file ends with the last ticks the feed produced.
            queue.Writer.TryComplete();
            try
            {
                await writer.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                LogDrainTimeout(_path);
            }
        }
    }

    public void Dispose() => _file.Dispose();

    /// <summary>A trade, or a book when <see cref="Book"/> is set.</summary>
    private readonly record struct Recorded(Tick Tick, DepthBook? Book);

    private async Task WriteLoopAsync(ChannelReader<Recorded> queue)
    {
        var failed = false;
        while (await queue.WaitToReadAsync().ConfigureAwait(false))
        {
            while (queue.TryRead(out var item))
            {
                var (tick, book) = item;
                var id = book?.InstrumentId ?? tick.InstrumentId;
                if (failed || (uint)id >= (uint)_instruments.Count)
                {
                    continue;
                }

                try
                {
                    var record = book is null
                        ? new TickRecord(_instruments[id].Key, tick.ExchangeTimeUs, tick.LastPrice, tick.Volume)
                        : new TickRecord(_instruments[id].Key, book.ExchangeTimeUs, 0, 0, book.Bids, book.Asks);
                    await _file.WriteLineAsync(TickFile.Format(record, _jsonLines)).ConfigureAwait(false);
                    Interlocked.Increment(ref _metrics.Recorded);
                }
                catch (IOException ex)
                {
                    failed = true; // one error line, not one per tick; the feed goes on
                    LogWriteFailed(_path, ex.Message);
                }
            }

            try
            {
                await _file.FlushAsync().ConfigureAwait(false);
            }
            catch (IOException ex) when (!failed)
            {
                failed = true;
                LogWriteFailed(_path, ex.Message);
            }
        }
    }

    private void OnDropped()
    {
        if (Interlocked.Increment(ref _metrics.RecordDropped) % 10_000 == 1)
        {
            LogDropped(_path, Volatile.Read(ref _metrics.RecordDropped));
        }
    }

    /// <summary>Passes ticks to the pipeline and, once the pipeline took one, offers it to the recording.</summary>
    private sealed class TeeWriter(ChannelWriter<Tick> pipeline, ChannelWriter<Recorded> recording, RecordingFeedSource owner) : ChannelWriter<Tick>
    {
        public override bool TryWrite(Tick item)
        {
            if (!pipeline.TryWrite(item))
            {
                return false;
            }

            if (!recording.TryWrite(new Recorded(item, null)))
            {
                owner.OnDropped();
            }

            return true;
        }

        public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) =>
            pipeline.WaitToWriteAsync(cancellationToken);

        public override bool TryComplete(Exception? error = null) => pipeline.TryComplete(error);
    }

    [LoggerMessage(EventId = 160, Level = LogLevel.Information, Message = "Recording every feed tick to {Path}")]
    private partial void LogRecording(string path);

    [LoggerMessage(EventId = 161, Level = LogLevel.Warning, Message = "Recording to {Path} fell behind; {Count} ticks not recorded so far")]
    private partial void LogDropped(string path, long count);

    [LoggerMessage(EventId = 162, Level = LogLevel.Error, Message = "Recording to {Path} failed, recording stops (the feed goes on): {Reason}")]
    private partial void LogWriteFailed(string path, string reason);

    [LoggerMessage(EventId = 163, Level = LogLevel.Warning, Message = "Recording to {Path}: the last queued ticks were not written within 5 s of shutdown")]
    private partial void LogDrainTimeout(string path);
}
