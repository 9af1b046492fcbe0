using System.Diagnostics.Metrics;
using LiteDB;
using Microsoft.Extensions.Options;
using PriceDaemon.Pipeline;
using PriceDaemon.Storage;

namespace PriceDaemon.Candles;

/// <summary>
/// The candle channel's one thread: at the throttle rate it copies the bars ticks changed from the <see cref="CandleBook"/>,
/// closes bars whose interval has ended with no later trade, and offers a new <c>candle</c> frame per changed bar to its
/// subscribers (a closed bar first, its successor one pass later, so a socket keeping up sees both); every
/// <see cref="CandleOptions.FlushIntervalMs"/> it writes closed bars and each changed instrument's newest bars to the
/// candle file, and now and then drops bars past their interval's retention. Loaded at start, before the throttle
/// runs: history survives a restart and the forming bar resumes.
/// </summary>
internal sealed partial class CandleService : BackgroundService
{
    // A pass at the throttle rate, within these bounds: a 0 ms throttle would spin, and a long one would hold a bar's
    // close (and its write) for that long.
    private static readonly TimeSpan MinPass = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxPass = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan PruneEvery = TimeSpan.FromMinutes(10);

    private readonly CandleBook _book;
    private readonly CandleOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<CandleService> _logger;
    private readonly TimeSpan _pass;
    private readonly CandleFrames _frames = new();
    private readonly IClosedBarSink[] _sinks;

    // The service thread's own: bars copied this pass, what each key last published, seqs.
    private readonly Bar[] _copy = new Bar[CandleIntervals.Count];
    private readonly Bar[] _published;
    private readonly long[] _seq;
    private readonly bool[] _closedThisPass;
    private readonly List<int> _closedKeys = [];
    private readonly bool[] _unwrittenInstrument;

    // A pass reads only the instruments ticks changed (the book marks them) unless the exchange clock has passed the
    // earliest end of a bar still forming, which any instrument may hold: only then does it walk every instrument to
    // close bars by time. 2,000 instruments at the throttle rate were 2,000 locks a pass; now about once a minute.
    private readonly List<int> _marked = [];
    private readonly List<int> _changed = [];
    private long _nextCloseUs = long.MinValue;
    internal long Visited;

    // Closed bars not yet in the file: history reads them with the file, under the lock, so none is missed or doubled.
    private readonly Lock _lock = new();
    private readonly List<(string Key, int Interval, Bar Bar)> _unwritten = [];
    private readonly List<(string Key, int Interval, Bar Bar)> _writing = [];
    private CandleStore? _store;
    private readonly Bar[] _flushCopy = new Bar[CandleIntervals.Count];
    private byte[] _pack = new byte[16 * 1024];
    // Each chunk's packed bytes from the last flush, refilled when the length is the same, which it is in steady state
    // (a fixed width per instrument and bar): LiteDB copies them into its pages during the write and keeps no reference.
    private readonly List<byte[]?> _chunkBytes = [];
    private readonly List<(int Chunk, byte[] Packed)> _forming = [];

    // Until the first write after opening: instrument ids may have moved between chunks since the file was written.
    private bool _rewriteAll = true;
    private long _lastFlush;
    private long _lastPrune = long.MinValue;

    internal long Closed;
    internal long Published;
    internal long WriteFailures;

    public CandleService(CandleBook book, IOptions<CandleOptions> options, IOptions<StorageOptions> storage, IOptions<ThrottleOptions> throttle, TimeProvider time, ILogger<CandleService> logger, IMeterFactory meterFactory, IEnumerable<IClosedBarSink> sinks)
    {
        _sinks = [.. sinks];
        _book = book;
        _options = options.Value;
        _time = time;
        _logger = logger;
        var pass = TimeSpan.FromMilliseconds(throttle.Value.MinIntervalMs);
        _pass = pass < MinPass ? MinPass : pass > MaxPass ? MaxPass : pass;
        var keys = book.Instruments.Count * CandleIntervals.Count;
        _published = new Bar[keys];
        _seq = new long[keys];
        _closedThisPass = new bool[keys];
        _unwrittenInstrument = new bool[book.Instruments.Count];
        Path = System.IO.Path.GetFullPath(string.IsNullOrEmpty(_options.Path)
            ? System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(storage.Value.Path)) ?? ".", "candles.db")
            : _options.Path);
        var meter = meterFactory.Create(PipelineMetrics.MeterName);
        meter.CreateObservableCounter("pricedaemon.candles.closed", () => Volatile.Read(ref Closed), "{bar}", "Bars closed, over all intervals");
        meter.CreateObservableCounter("pricedaemon.candles.published", () => Volatile.Read(ref Published), "{frame}", "candle frames offered to subscribers");
        meter.CreateObservableCounter("pricedaemon.candles.late_ticks", () => Volatile.Read(ref book.LateTicks), "{tick}", "Ticks older than their instrument's newest 1m bar: volume counted, prices not");
    }

    /// <summary>The candle file in use.</summary>
    public string Path { get; }

    /// <summary>Opens the file and restores every instrument's newest bars into the book; idempotent.</summary>
    public void Open()
    {
        if (_store is not null)
        {
            return;
        }

        try
        {
            var store = CandleStore.Open(Path);
            var restored = 0;
            foreach (var (key, bars, cumulative, day) in store.LoadForming())
            {
                if (_book.Instruments.TryGet(key, out var instrument))
                {
                    _book.Restore(instrument.Id, bars, cumulative, day);
                    restored++;
                }
            }

            _store = store;
            Array.Fill(_unwrittenInstrument, true); // the first flush rewrites every chunk by today's instrument ids
            _lastFlush = _time.GetTimestamp();
            LogOpened(Path, restored);
        }
        catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException or InvalidCastException or InvalidDataException)
        {
            throw new StorageException($"Candles:Path: cannot use {Path}: {ex.Message}", ex);
        }
    }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        Open();
        return base.StartAsync(cancellationToken);
    }

    /// <summary>
    /// The newest <paramref name="limit"/> closed bars of an instrument and interval starting in [from, to), oldest first:
    /// the file's and those closed since its last write.
    /// </summary>
    public List<Bar> History(string key, int interval, int limit, long fromUs = long.MinValue, long toUs = long.MaxValue)
    {
        if (_store is not { } store || limit <= 0)
        {
            return [];
        }

        lock (_lock)
        {
            var bars = store.Read(key, interval, fromUs, toUs, limit);
            foreach (var (k, i, bar) in _unwritten)
            {
                if (i == interval && k == key && bar.StartUs >= fromUs && bar.StartUs < toUs && (bars.Count == 0 || bar.StartUs > bars[^1].StartUs))
                {
                    bars.Add(bar);
                }
            }

            return bars.Count > limit ? bars.GetRange(bars.Count - limit, limit) : bars;
        }
    }

    /// <summary>The start of the newest closed bar of <paramref name="interval"/> in the file, any instrument; null when none.</summary>
    public long? NewestStored(int interval) => _store?.NewestStart(interval);

    /// <summary>
    /// Closed bars from elsewhere (an edge's backfill from the ingest's stream) into the file, in one transaction. A bar
    /// already there is replaced by the same bar; the book is not touched (its forming bars come from ticks).
    /// </summary>
    public void Import(IReadOnlyList<(string Key, int Interval, Bar Bar)> bars)
    {
        if (_store is not { } store || bars.Count == 0)
        {
            return;
        }

        lock (_lock)
        {
            store.Write(bars, []);
        }
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        DedicatedThread.Run("pricedaemon-candles", () => RunAsync(stoppingToken), niceness: 5);

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        var flushEvery = TimeSpan.FromMilliseconds(_options.FlushIntervalMs);
        using var delay = new ReusableDelay(_time, stoppingToken);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await delay.WaitAsync(_pass);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break;
                }

                Pass();
                if (_time.GetElapsedTime(_lastFlush) >= flushEvery)
                {
                    Flush();
                }

                if (_lastPrune == long.MinValue || _time.GetElapsedTime(_lastPrune) >= PruneEvery)
                {
                    Prune();
                }
            }
        }
        finally
        {
            // The throttle has drained by now (it stops first): the last ticks' bars are written.
            Pass();
            Flush();
            _store?.Dispose();
            _store = null;
        }
    }

    /// <summary>One pass: bars closed by time, closed bars announced, then changed forming bars. Tests call it directly.</summary>
    internal void Pass()
    {
        var closeBefore = _book.ExchangeNowUs() is { } now ? now - (_options.CloseGraceMs * 1000L) : long.MinValue;
        var instruments = _book.Instruments;
        var changed = _changed;
        changed.Clear();
        _marked.Clear();
        // The marks are taken first either way: an instrument changed after this is marked again for the next pass.
        _book.TakeChangedInstruments(_marked);
        if (closeBefore != long.MinValue && closeBefore >= _nextCloseUs)
        {
            _nextCloseUs = long.MaxValue;
            for (var id = 0; id < instruments.Count; id++)
            {
                Visit(id, closeBefore);
            }
        }
        else
        {
            foreach (var id in _marked)
            {
                Visit(id, closeBefore);
            }
        }

        while (_book.TryTakeClosed(out var closed))
        {
            var key = CandleBook.Key(closed.InstrumentId, closed.Interval);
            lock (_lock)
            {
                _unwritten.Add((instruments[closed.InstrumentId].Key, closed.Interval, closed.Bar));
            }

            Closed++;
            foreach (var sink in _sinks)
            {
                sink.Closed(instruments[closed.InstrumentId].Key, closed.Interval, closed.Bar);
            }

            if (Publish(key, closed.InstrumentId, closed.Interval, closed.Bar))
            {
                _closedThisPass[key] = true;
                _closedKeys.Add(key);
            }
        }

        foreach (var id in changed)
        {
            _book.Read(id, _copy, out _, out _);
            for (var interval = 0; interval < CandleIntervals.Count; interval++)
            {
                var key = CandleBook.Key(id, interval);
                ref readonly var bar = ref _copy[interval];
                if (_closedThisPass[key])
                {
                    _book.Touch(id); // its successor goes out next pass: a socket keeping up sees the closed bar
                    continue;
                }

                if (bar.Exists && (_book.Latest(key) is null || !bar.SameAs(_published[key])))
                {
                    Publish(key, id, interval, bar);
                }
            }
        }

        foreach (var key in _closedKeys)
        {
            _closedThisPass[key] = false;
        }

        _closedKeys.Clear();
    }

    /// <summary>Copies one instrument's bars if they changed (closing those past <paramref name="closeBefore"/>) and notes when it next needs a look.</summary>
    private void Visit(int id, long closeBefore)
    {
        Visited++;
        if (_book.TakeChanged(id, _copy, closeBefore, out var formingEnd))
        {
            _changed.Add(id);
            _unwrittenInstrument[id] = true;
        }

        if (formingEnd < _nextCloseUs)
        {
            _nextCloseUs = formingEnd;
        }
    }

    /// <summary>Encodes and offers a new version of the key's bar when someone subscribes to it; true when it did.</summary>
    private bool Publish(int key, int instrumentId, int interval, in Bar bar)
    {
        var subscribers = _book.Subscribers(key);
        if (subscribers.Length == 0)
        {
            return false;
        }

        var frame = new CandleFrame(++_seq[key], _frames.Candle(_book.Instruments[instrumentId].Key, interval, _seq[key], bar));
        _published[key] = bar;
        Published++;
        foreach (var subscription in _book.PublishLatest(key, frame))
        {
            subscription.Offer(frame);
        }

        return true;
    }

    /// <summary>Writes closed bars and the newest bars of instruments changed since the last write; a failed write is retried.</summary>
    internal void Flush()
    {
        _lastFlush = _time.GetTimestamp();
        if (_store is not { } store)
        {
            return;
        }

        // A copy to write from outside the lock, kept from flush to flush.
        var closed = _writing;
        closed.Clear();
        lock (_lock)
        {
            closed.AddRange(_unwritten);
        }

        // Whole chunks of instruments, rewritten in place: the few documents LiteDB writes are what a flush costs.
        _forming.Clear();
        var count = _unwrittenInstrument.Length;
        for (var first = 0; first < count; first += CandleStore.FormingChunk)
        {
            var last = Math.Min(count, first + CandleStore.FormingChunk);
            if (Array.IndexOf(_unwrittenInstrument, true, first, last - first) < 0)
            {
                continue;
            }

            var length = 0;
            for (var id = first; id < last; id++)
            {
                _book.Read(id, _flushCopy, out var cumulative, out var day);
                if (cumulative != 0 || Array.Exists(_flushCopy, static b => b.Exists))
                {
                    CandleStore.AppendForming(ref _pack, ref length, _book.Instruments[id].Key, _flushCopy, cumulative, day);
                }
            }

            _forming.Add((first / CandleStore.FormingChunk, Packed(first / CandleStore.FormingChunk, length)));
        }

        if (closed.Count == 0 && _forming.Count == 0)
        {
            return;
        }

        try
        {
            lock (_lock)
            {
                // After a restart every chunk is rewritten (all instruments start unwritten), so chunks past the last one go.
                store.Write(closed, _forming, _rewriteAll ? (count + CandleStore.FormingChunk - 1) / CandleStore.FormingChunk : -1);
                _unwritten.RemoveRange(0, closed.Count);
            }

            Array.Clear(_unwrittenInstrument);
            _rewriteAll = false;
        }
        catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            WriteFailures++;
            LogWriteFailed(Path, ex.Message);
        }
    }

    /// <summary>The first <paramref name="length"/> bytes of the pack buffer in the chunk's own array, reused when it fits exactly.</summary>
    private byte[] Packed(int chunk, int length)
    {
        while (_chunkBytes.Count <= chunk)
        {
            _chunkBytes.Add(null);
        }

        if (_chunkBytes[chunk] is not { } bytes || bytes.Length != length)
        {
            bytes = new byte[length];
            _chunkBytes[chunk] = bytes;
        }

        _pack.AsSpan(0, length).CopyTo(bytes);
        return bytes;
    }

    /// <summary>Drops closed bars older than each interval's retention, counted in trading days back from today.</summary>
    internal void Prune()
    {
        _lastPrune = _time.GetTimestamp();
        if (_store is not { } store)
        {
            return;
        }

        var nowUs = _book.ExchangeNowUs() ?? (_time.GetUtcNow().Ticks - DateTime.UnixEpoch.Ticks) / 10;
        var today = _book.Session.TradingDay(nowUs);
        try
        {
            for (var interval = 0; interval < CandleIntervals.Count; interval++)
            {
                var first = CandleSession.FirstOfTradingDays(today, _options.RetentionDays(interval));
                var removed = store.Prune(interval, _book.Session.DayStartUs(first));
                if (removed > 0)
                {
                    LogPruned(removed, CandleIntervals.Names[interval]);
                }
            }
        }
        catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            LogWriteFailed(Path, ex.Message);
        }
    }

    [LoggerMessage(EventId = 380, Level = LogLevel.Information, Message = "Candles {Path} opened: newest bars of {Instruments} instruments restored")]
    private partial void LogOpened(string path, int instruments);

    [LoggerMessage(EventId = 381, Level = LogLevel.Error, Message = "Candles {Path}: write failed, retried at the next flush: {Error}")]
    private partial void LogWriteFailed(string path, string error);

    [LoggerMessage(EventId = 382, Level = LogLevel.Information, Message = "Candles: {Count} {Interval} bars past their retention removed")]
    private partial void LogPruned(int count, string interval);
}
