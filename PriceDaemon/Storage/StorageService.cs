using System.Text;
using LiteDB;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Storage;

/// <summary>
/// Warm start and write-behind of last known prices. <see cref="Open"/> loads the cache from the file before
/// any stage starts (Program calls it before the host starts; <see cref="StartAsync"/> calls it for hosts
/// started directly), so the throttle stage continues the stored seqs and the first socket already gets
/// stored prices. Then, every <see cref="StorageOptions.FlushIntervalMs"/>, the instruments the throttle
/// stage marked dirty are written in one transaction. At stop, after the throttle stage has drained (see
/// Hosting/ShutdownSequence.cs), its loop writes once more and closes the file: a clean stop loses nothing.
/// The loop is the store's only user from its start on (<see cref="PriceStore"/> is not thread-safe); nothing
/// else writes, even when a flush outlasts the host's stop timeout.
/// </summary>
internal sealed partial class StorageService : BackgroundService
{
    // Retries of a failing disk back off up to this, so a long outage costs one attempt per half minute.
    private const double MaxBackoffMs = 30_000;

    private static readonly string[] _sourceNames = [.. Enum.GetValues<PriceSource>().Select(s => Encoding.ASCII.GetString(FrameEncoder.SourceName(s)))];

    private readonly StorageOptions _options;
    private readonly PriceCache _cache;
    private readonly InstrumentRegistry _instruments;
    private readonly TimeProvider _time;
    private readonly ILogger<StorageService> _logger;
    private readonly bool _microseconds;
    private readonly TimeSpan _interval;
    private readonly List<PriceFrame> _dirty = [];
    private readonly List<int> _dirtyIds = [];
    private readonly List<StoredPrice> _batch = [];
    private PriceStore? _store;
    private int _failures;
    private long _failingSince;
    private volatile string? _problem;
    private volatile bool _warm;
    private volatile bool _pipelineDrained = true;
    private bool _stopOverdueLogged;

    public StorageService(
        IOptions<StorageOptions> options,
        IOptions<FeedOptions> feed,
        PriceCache cache,
        InstrumentRegistry instruments,
        TimeProvider time,
        ILogger<StorageService> logger)
    {
        _options = options.Value;
        _microseconds = feed.Value.MicrosecondTimestamps;
        _cache = cache;
        _instruments = instruments;
        _time = time;
        _logger = logger;
        _interval = TimeSpan.FromMilliseconds(_options.FlushIntervalMs);
    }

    /// <summary>The cache holds everything storage had: the daemon can serve last known prices.</summary>
    public bool IsWarm => _warm;

    /// <summary>Null while writes succeed; otherwise what is failing, for readiness.</summary>
    public string? Problem => _problem;

    /// <summary>The data file in use.</summary>
    public string Path => System.IO.Path.GetFullPath(_options.Path);

    /// <summary>
    /// A seam for tests: runs on the writing thread just before each price write, so a test can hold a flush in
    /// progress and see who else touches the store meanwhile.
    /// </summary>
    internal Action<IReadOnlyList<StoredPrice>>? BeforeWrite { get; init; }

    /// <summary>
    /// Opens the file and loads the cache; idempotent. Throws <see cref="StorageException"/> when the file
    /// cannot be used, which stops start-up.
    /// </summary>
    public void Open()
    {
        if (_store is not null)
        {
            return;
        }

        var (store, state) = PriceStore.Open(_options.Path);
        try
        {
            var epoch = Restore(state, store.Path);
            // Not clean until the final flush says so: a kill before then starts a new epoch next time.
            store.WriteState(epoch, cleanShutdown: false);
        }
        catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException)
        {
            store.Dispose();
            throw new StorageException($"Storage:Path: cannot write to {store.Path}: {ex.Message}", ex);
        }

        _store = store;
        _warm = true;
    }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        Open();
        return base.StartAsync(cancellationToken);
    }

    /// <summary>
    /// Tells the loop to write the last batch and close the file, and waits for it up to the host's stop timeout.
    /// Call after the throttle stage has drained (the shutdown sequence orders it), so that batch holds every last
    /// price. The store is never touched here: a loop still busy past the timeout finishes on its own thread, and if
    /// the process exits first the file keeps its last completed flush and the next start begins a new epoch.
    /// </summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (ExecuteTask is { IsCompleted: false } && !_stopOverdueLogged)
        {
            _stopOverdueLogged = true;
            LogStopOverdue(Path);
        }
    }

    /// <summary>
    /// The stop could not wait for the throttle stage to finish: prices (and seqs) may still change after the last
    /// flush, so it must not count as a clean stop; the next start takes a new epoch.
    /// </summary>
    internal void PipelineNotDrained() => _pipelineDrained = false;

    public override void Dispose()
    {
        // Once the loop has run, it owns the store and closes it; one still running (stuck past the stop timeout)
        // keeps it, because the store is not thread-safe and the process is exiting anyway.
        if (ExecuteTask is null or { IsCompleted: true })
        {
            _store?.Dispose();
            _store = null;
        }

        base.Dispose();
    }

    /// <summary>
    /// Writes every dirty instrument in one transaction. Returns false when the write failed; the instruments
    /// are then marked dirty again, so the retry writes their newest prices.
    /// </summary>
    internal bool Flush()
    {
        _batch.Clear();
        _dirtyIds.Clear();
        // Cached frames are pooled: read them inside a scope and keep only copies of their values past it.
        using (var scope = _cache.Read())
        {
            _dirty.Clear();
            _cache.TakeDirty(_dirty);
            foreach (var frame in _dirty)
            {
                _dirtyIds.Add(frame.InstrumentId);
                _batch.Add(new StoredPrice(
                    _instruments[frame.InstrumentId].Key, frame.LastPrice, frame.Volume, frame.TimestampUs,
                    frame.ChangePercent, frame.PreviousClose, frame.Seq, _sourceNames[(int)frame.Source]));
            }

            _dirty.Clear();
        }

        if (_batch.Count == 0)
        {
            return true;
        }

        try
        {
            BeforeWrite?.Invoke(_batch);
            _store!.Write(_batch);
        }
        catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException)
        {
            foreach (var id in _dirtyIds)
            {
                _cache.MarkDirty(id);
            }

            OnFailure(ex);
            return false;
        }

        if (_failures > 0)
        {
            LogRecovered(_store.Path, _failures, (long)_time.GetElapsedTime(_failingSince).TotalSeconds, _batch.Count);
            _failures = 0;
            _problem = null;
        }

        return true;
    }

    // Write-behind runs on a thread of its own at a lower priority: a flush serializes every price that
    // changed, and when a market-open burst and a flush want the same core, the burst should get it. Awaits
    // resume on that thread (see DedicatedThread), so no ConfigureAwait(false).
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        DedicatedThread.Run("pricedaemon-storage", () => RunAsync(stoppingToken), niceness: 10);

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        // From here on this thread is the only one that touches the store, through the final flush and Dispose.
        try
        {
            var delay = _interval;
            using var timer = new ReusableDelay(_time, stoppingToken);
            while (true)
            {
                try
                {
                    await timer.WaitAsync(delay);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break; // StopAsync: the pipeline has drained
                }

                delay = Flush() ? _interval : Backoff();
            }

            FinalFlush();
        }
        finally
        {
            _store?.Dispose();
            _store = null;
        }
    }

    /// <summary>Writes the last batch and, only if that worked, marks the file clean so the next start keeps the epoch.</summary>
    private void FinalFlush()
    {
        if (_store is not { } store)
        {
            return;
        }

        if (!Flush())
        {
            LogFinalFlushFailed(store.Path, _problem ?? "write failed");
            return;
        }

        try
        {
            store.WriteState(_cache.Epoch, cleanShutdown: _pipelineDrained);
        }
        catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException)
        {
            LogFinalFlushFailed(store.Path, ex.Message);
        }
    }

    private string Restore(StoredState state, string path)
    {
        var encoder = new FrameEncoder(_microseconds);
        var frames = new List<PriceFrame>(state.Prices.Count);
        foreach (var price in state.Prices)
        {
            if (!_instruments.TryGet(price.Key, out var instrument))
            {
                continue; // no longer in the universe: kept in the file, not served
            }

            // Labelled stored and stale for as long as no newer tick replaces it: it is only as fresh as its timestamp.
            var tick = new Tick(instrument.Id, price.LastPrice, price.Volume, price.TimestampUs, 0, PriceSource.Stored);
            frames.Add(encoder.Encode(instrument, tick, price.Seq, price.PreviousClose, stale: true));
        }

        // The epoch survives only a clean stop. After a kill the file may be up to one flush behind what
        // clients saw, so a seq they hold could come again with another price: a new epoch tells them.
        var resumed = state is { Epoch: not null, CleanShutdown: true };
        var epoch = resumed ? state.Epoch! : _cache.Epoch;
        _cache.Restore(epoch, frames);
        if (state.Epoch is not null && !resumed)
        {
            LogUncleanRestart(path, frames.Count, epoch);
        }
        else
        {
            LogRestored(path, frames.Count, epoch);
        }

        return epoch;
    }

    private void OnFailure(Exception ex)
    {
        _problem = $"writes to {_store!.Path} are failing: {ex.Message}";
        if (++_failures == 1)
        {
            _failingSince = _time.GetTimestamp();
            LogWriteFailed(_store.Path, ex.Message, _dirtyIds.Count);
        }
        else
        {
            LogStillFailing(_failures, ex.Message);
        }
    }

    /// <summary>Exponential from the flush interval up to <see cref="MaxBackoffMs"/>, ±20% jitter so daemons sharing a disk do not retry in step.</summary>
    private TimeSpan Backoff()
    {
        var ms = _interval.TotalMilliseconds * Math.Pow(2, Math.Min(_failures, 20));
        ms = Math.Max(_interval.TotalMilliseconds, Math.Min(ms, MaxBackoffMs));
        return TimeSpan.FromMilliseconds(ms * (0.8 + (Random.Shared.NextDouble() * 0.4)));
    }

    [LoggerMessage(EventId = 500, Level = LogLevel.Information, Message = "Storage {Path}: restored {Count} prices, epoch {Epoch}")]
    private partial void LogRestored(string path, int count, string epoch);

    [LoggerMessage(EventId = 501, Level = LogLevel.Warning, Message = "Storage {Path}: the last run did not stop cleanly; restored {Count} prices as of its last flush, new epoch {Epoch}")]
    private partial void LogUncleanRestart(string path, int count, string epoch);

    [LoggerMessage(EventId = 502, Level = LogLevel.Error, Message = "Storage writes to {Path} are failing: {Error}. {Count} prices stay in memory; retrying with backoff (logged again when it recovers)")]
    private partial void LogWriteFailed(string path, string error, int count);

    [LoggerMessage(EventId = 503, Level = LogLevel.Debug, Message = "Storage write attempt {Attempt} failed: {Error}")]
    private partial void LogStillFailing(int attempt, string error);

    [LoggerMessage(EventId = 504, Level = LogLevel.Information, Message = "Storage writes to {Path} recovered after {Attempts} failed attempts over {Seconds} s; caught up {Count} prices")]
    private partial void LogRecovered(string path, int attempts, long seconds, int count);

    [LoggerMessage(EventId = 505, Level = LogLevel.Error, Message = "Storage {Path}: the final write at shutdown failed ({Error}); the next start restores the last successful flush under a new epoch")]
    private partial void LogFinalFlushFailed(string path, string error);

    [LoggerMessage(EventId = 506, Level = LogLevel.Error, Message = "Storage {Path}: a write still in progress outlasted the stop timeout; the final write is left to it, and if the process exits first the next start restores the last completed flush under a new epoch")]
    private partial void LogStopOverdue(string path);
}
