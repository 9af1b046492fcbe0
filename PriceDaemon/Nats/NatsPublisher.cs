using System.Threading.Channels;
using Microsoft.Extensions.Options;
using NATS.Client.KeyValueStore;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;

namespace PriceDaemon.Nats;

/// <summary>
/// <c>Nats:Publish</c>: sends every tick the feed produces to <c>prices.&lt;segment&gt;.&lt;id&gt;</c> and, at most once per
/// instrument per <see cref="NatsOptions.KvFlushIntervalMs"/>, its newest tick to the key-value bucket. The feed hands
/// ticks over with <see cref="Offer"/>, which never waits: the queue is bounded and drops its oldest tick when full, so
/// a slow or absent NATS costs this daemon's own clients nothing and memory stays bounded. While NATS is down ticks are
/// dropped (counted) rather than buffered; the bucket is brought up to date on the first flush after it returns.
/// </summary>
internal sealed partial class NatsPublisher : BackgroundService
{
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(2);

    private readonly Channel<Tick> _queue;
    private readonly NatsLink _link;
    private readonly NatsMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger<NatsPublisher> _logger;
    private readonly TimeSpan _flushInterval;
    private readonly string[] _subjects;
    private readonly string[] _kvKeys;
    private readonly byte[] _scratch = new byte[TickCodec.Size];
    private readonly byte[] _bookScratch = new byte[BookCodec.MaxSize];

    // Books from the feed, on their own queue and loop: a burst of books never delays a tick. DropOldest, as for ticks.
    private readonly Channel<DepthBook> _books;

    // The newest tick of each instrument not yet in the bucket. Written by the publish loop, taken by the flush loop.
    private readonly Lock _latestGate = new();
    private readonly Tick[] _latest;
    private readonly bool[] _dirty;
    private Task _flushLoop = Task.CompletedTask;
    private bool _kvFailing;

    public NatsPublisher(InstrumentRegistry instruments, NatsLink link, NatsMetrics metrics, IOptions<NatsOptions> options, TimeProvider time, ILogger<NatsPublisher> logger)
    {
        _link = link;
        _metrics = metrics;
        _time = time;
        _logger = logger;
        _flushInterval = TimeSpan.FromMilliseconds(options.Value.KvFlushIntervalMs);
        _subjects = [.. instruments.All.Select(i => NatsSubjects.Subject(i.Key))];
        _kvKeys = [.. instruments.All.Select(i => NatsSubjects.KvKey(i.Key))];
        _latest = new Tick[instruments.Count];
        _dirty = new bool[instruments.Count];
        // DropOldest: the newest prices are the ones worth sending; the dropped tick is counted, never silent.
        _queue = Channel.CreateBounded<Tick>(
            new BoundedChannelOptions(options.Value.PublishCapacity)
            {
                FullMode = BoundedChannelFullMode.DropOldest,
                SingleReader = true,
                SingleWriter = false,
                AllowSynchronousContinuations = false,
            },
            _ => Interlocked.Increment(ref metrics.PublishDropped));
        _books = Channel.CreateBounded<DepthBook>(
            new BoundedChannelOptions(Math.Min(options.Value.PublishCapacity, 4096))
            {
                FullMode = BoundedChannelFullMode.DropOldest,
                SingleReader = true,
                SingleWriter = false,
                AllowSynchronousContinuations = false,
            },
            _ => Interlocked.Increment(ref metrics.PublishDropped));
    }

    /// <summary>Takes a book the feed handed to the depth stage. Never blocks.</summary>
    public void OfferBook(DepthBook book)
    {
        if ((uint)book.InstrumentId < (uint)_latest.Length)
        {
            _books.Writer.TryWrite(book);
        }
    }

    /// <summary>Takes a tick the feed has written into the pipeline. Never blocks.</summary>
    public void Offer(in Tick tick)
    {
        if ((uint)tick.InstrumentId < (uint)_latest.Length)
        {
            _queue.Writer.TryWrite(tick);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = _link.ConnectAsync();
        _flushLoop = FlushLoopAsync(stoppingToken);
        var books = PublishBooksAsync(stoppingToken);
        try
        {
            await PublishTicksAsync(stoppingToken).ConfigureAwait(false);
        }
        finally
        {
            _books.Writer.TryComplete();
            await books.ConfigureAwait(false);
        }
    }

    private async Task PublishBooksAsync(CancellationToken stoppingToken)
    {
        var reader = _books.Reader;
        try
        {
            while (await reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
            {
                while (reader.TryRead(out var book))
                {
                    if (!_link.IsOpen)
                    {
                        Interlocked.Increment(ref _metrics.PublishDropped);
                        continue;
                    }

                    var length = BookCodec.Write(_bookScratch, book, UnixMicroseconds(_time));
                    try
                    {
                        await _link.Connection.PublishAsync(_subjects[book.InstrumentId], (ReadOnlyMemory<byte>)_bookScratch.AsMemory(0, length), cancellationToken: stoppingToken).ConfigureAwait(false);
                        Interlocked.Increment(ref _metrics.Published);
                    }
                    catch (NATS.Client.Core.NatsException)
                    {
                        Interlocked.Increment(ref _metrics.PublishDropped);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task PublishTicksAsync(CancellationToken stoppingToken)
    {
        var reader = _queue.Reader;
        try
        {
            // Ends when StopAsync completes the queue and it is drained, or when the stop token fires.
            while (await reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
            {
                while (reader.TryRead(out var tick))
                {
                    await PublishAsync(tick, stoppingToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // The feed has stopped (it stops first): send what is queued with bounded effort, then write the bucket once
        // more so a restarted edge warms up with the very last prices.
        _queue.Writer.TryComplete();
        if (ExecuteTask is { } loop)
        {
            await Task.WhenAny(loop, Task.Delay(DrainTimeout, _time, cancellationToken)).ConfigureAwait(false);
        }

        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        await _flushLoop.ConfigureAwait(false);
        using var timeout = new CancellationTokenSource(DrainTimeout, _time);
        try
        {
            await FlushAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            LogFinalFlushTimedOut();
        }
    }

    private async ValueTask PublishAsync(Tick tick, CancellationToken ct)
    {
        lock (_latestGate)
        {
            _latest[tick.InstrumentId] = tick;
            _dirty[tick.InstrumentId] = true;
        }

        if (!_link.IsOpen)
        {
            // NATS.Net would hold it until the reconnect; a price that late is not worth a slot. The bucket catches up.
            Interlocked.Increment(ref _metrics.PublishDropped);
            return;
        }

        TickCodec.Write(_scratch, tick, UnixMicroseconds(_time));
        try
        {
            // Completes once the bytes are copied into the connection's write buffer, so the scratch is free again.
            await _link.Connection.PublishAsync(_subjects[tick.InstrumentId], (ReadOnlyMemory<byte>)_scratch, cancellationToken: ct).ConfigureAwait(false);
            Interlocked.Increment(ref _metrics.Published);
        }
        catch (NATS.Client.Core.NatsException)
        {
            Interlocked.Increment(ref _metrics.PublishDropped);
        }
    }

    private async Task FlushLoopAsync(CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await Task.Delay(_flushInterval, _time, ct).ConfigureAwait(false);
                await FlushAsync(ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>Writes each instrument's newest tick since the last flush to the bucket; failed writes stay dirty.</summary>
    private async Task FlushAsync(CancellationToken ct)
    {
        if (!_link.IsOpen)
        {
            return;
        }

        var batch = new List<Tick>();
        lock (_latestGate)
        {
            for (var id = 0; id < _dirty.Length; id++)
            {
                if (_dirty[id])
                {
                    _dirty[id] = false;
                    batch.Add(_latest[id]);
                }
            }
        }

        if (batch.Count == 0)
        {
            return;
        }

        INatsKVStore bucket;
        try
        {
            bucket = await _link.GetBucketAsync(ct).ConfigureAwait(false);
        }
        catch (NATS.Client.Core.NatsException ex)
        {
            Redirty(batch);
            OnKvFailure(ex.Message);
            return;
        }
        catch (OperationCanceledException)
        {
            Redirty(batch); // stopping: the final flush writes them
            throw;
        }

        var now = UnixMicroseconds(_time);
        var failed = new List<Tick>();
        // Concurrent puts in chunks: one round trip per chunk instead of one per instrument.
        foreach (var chunk in batch.Chunk(256))
        {
            var puts = chunk.Select(async tick =>
            {
                var value = new byte[TickCodec.Size];
                TickCodec.Write(value, tick, now);
                try
                {
                    await bucket.PutAsync(_kvKeys[tick.InstrumentId], value, cancellationToken: ct).ConfigureAwait(false);
                    Interlocked.Increment(ref _metrics.KvPuts);
                    return (Tick?)null;
                }
                catch (Exception ex) when (ex is NATS.Client.Core.NatsException or OperationCanceledException)
                {
                    // Cancelled (shutdown) or failed: stays dirty, so the final flush or the next one writes it.
                    Interlocked.Increment(ref _metrics.KvPutFailures);
                    return tick;
                }
            });
            foreach (var result in await Task.WhenAll(puts).ConfigureAwait(false))
            {
                if (result is { } tick)
                {
                    failed.Add(tick);
                }
            }
        }

        if (failed.Count > 0)
        {
            Redirty(failed);
            OnKvFailure($"{failed.Count} of {batch.Count} writes failed");
        }
        else if (_kvFailing)
        {
            _kvFailing = false;
            LogKvRecovered(batch.Count);
        }
    }

    /// <summary>Marks the instruments dirty again, unless a newer tick already did.</summary>
    private void Redirty(List<Tick> ticks)
    {
        lock (_latestGate)
        {
            foreach (var tick in ticks)
            {
                _dirty[tick.InstrumentId] = true;
            }
        }
    }

    private void OnKvFailure(string reason)
    {
        if (!_kvFailing)
        {
            _kvFailing = true;
            LogKvFailing(reason);
        }
    }

    internal static long UnixMicroseconds(TimeProvider time) => (time.GetUtcNow().UtcTicks - DateTime.UnixEpoch.Ticks) / 10;

    [LoggerMessage(EventId = 910, Level = LogLevel.Warning, Message = "NATS key-value writes are failing ({Reason}); retrying every flush (logged again when they recover)")]
    private partial void LogKvFailing(string reason);

    [LoggerMessage(EventId = 911, Level = LogLevel.Information, Message = "NATS key-value writes recovered; wrote {Count} last values")]
    private partial void LogKvRecovered(int count);

    [LoggerMessage(EventId = 912, Level = LogLevel.Warning, Message = "NATS key-value: the final write at shutdown timed out; edges warm from the previous flush")]
    private partial void LogFinalFlushTimedOut();
}
