using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;

namespace PriceDaemon.Pipeline;

/// <summary>
/// The <c>depth</c> and <c>book</c> channels' throttle: the same rule as prices, per instrument at most one update
/// per <see cref="ThrottleOptions.MinIntervalMs"/>. A book in an open window is emitted at once; books inside a closed
/// window wait in the instrument's <see cref="DepthIngest"/> mailbox, where the latest replaces the others, and the
/// newest is emitted when the window closes. Each emitted book is serialized once per channel (<c>depth</c>: the best
/// five levels a side; <c>book</c>: up to thirty), kept as the channel's latest and offered to its subscribers.
/// Runs on its own loop, not the throttle's thread: with no depth subscriber no book is produced and this loop sleeps.
/// </summary>
public sealed partial class DepthStage : BackgroundService
{
    private readonly DepthIngest _ingest;
    private readonly InstrumentRegistry _instruments;
    private readonly TimeProvider _time;
    private readonly DepthEncoder _encoder;
    private readonly long _intervalTicks;
    private readonly State[] _state;
    private readonly PriorityQueue<int, long> _due = new();
    private ITimer? _timer;
    private long _timerArmedFor = long.MaxValue;

    internal long Emitted;

    public DepthStage(DepthIngest ingest, InstrumentRegistry instruments, IOptions<ThrottleOptions> options, IOptions<FeedOptions> feed, TimeProvider time, IMeterFactory meterFactory)
    {
        _ingest = ingest;
        _instruments = instruments;
        _time = time;
        _encoder = new DepthEncoder(feed.Value.MicrosecondTimestamps);
        _intervalTicks = options.Value.MinIntervalMs * time.TimestampFrequency / 1000;
        _state = new State[instruments.Count];
        Array.Fill(_state, new State { LastEmit = long.MinValue });
        Depth = new DepthChannel("depth", instruments.Count);
        Book = new DepthChannel("book", instruments.Count);
        var meter = meterFactory.Create(PipelineMetrics.MeterName);
        meter.CreateObservableCounter("pricedaemon.depth.books", () => Volatile.Read(ref ingest.Written), "{book}", "Order books received from the feed");
        meter.CreateObservableCounter("pricedaemon.depth.coalesced", () => Volatile.Read(ref ingest.Replaced), "{book}", "Order books replaced by a newer one before the depth throttle emitted them");
        meter.CreateObservableCounter("pricedaemon.depth.updates", () => Volatile.Read(ref Emitted), "{update}", "Depth and book updates emitted");
    }

    /// <summary>Best five levels a side.</summary>
    public DepthChannel Depth { get; }

    /// <summary>Up to thirty levels a side.</summary>
    public DepthChannel Book { get; }

    /// <summary>
    /// Whether some client subscribes to the instrument's depth or book: feeds that make books up (the simulated one)
    /// build them only then, so depth costs nothing while nobody watches it.
    /// </summary>
    public bool IsWanted(int instrumentId) => Depth.Subscribers(instrumentId) + Book.Subscribers(instrumentId) > 0;

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _ingest.Complete();
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = _time.CreateTimer(static s => ((DepthStage)s!).Wake(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _timer = timer;
        var reader = _ingest.Reader;
        try
        {
            while (await reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
            {
                while (reader.TryRead(out var id))
                {
                    if (id != DepthIngest.WakeId)
                    {
                        OnBook(id, _time.GetTimestamp());
                    }
                }

                EmitDue(_time.GetTimestamp());
                ArmTimer();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>A book arrived in the instrument's mailbox: emitted now if its window is open, else when it closes.</summary>
    internal void OnBook(int id, long now)
    {
        ref var s = ref _state[id];
        if (s.Scheduled)
        {
            return; // the mailbox keeps the newest until the window closes
        }

        if (s.LastEmit == long.MinValue || now - s.LastEmit >= _intervalTicks)
        {
            Emit(id, ref s, now);
            return;
        }

        s.Scheduled = true;
        _due.Enqueue(id, s.LastEmit + _intervalTicks);
    }

    /// <summary>Emits the newest book of every instrument whose window has closed by <paramref name="now"/>.</summary>
    internal void EmitDue(long now)
    {
        while (_due.TryPeek(out var id, out var at) && at <= now)
        {
            _due.Dequeue();
            ref var s = ref _state[id];
            s.Scheduled = false;
            Emit(id, ref s, now);
        }
    }

    private void Emit(int id, ref State s, long now)
    {
        if (_ingest.Take(id) is not { } book)
        {
            return;
        }

        s.LastEmit = now;
        s.Seq++;
        var instrument = _instruments[id];
        Depth.Publish(_encoder.Encode(instrument, book, s.Seq, full: false));
        Book.Publish(_encoder.Encode(instrument, book, s.Seq, full: true));
        Interlocked.Increment(ref Emitted);
    }

    private void ArmTimer()
    {
        if (_timer is null || !_due.TryPeek(out _, out var at) || at == _timerArmedFor)
        {
            return;
        }

        _timerArmedFor = at;
        var delay = _time.GetElapsedTime(_time.GetTimestamp(), at);
        _timer.Change(delay < TimeSpan.Zero ? TimeSpan.Zero : delay, Timeout.InfiniteTimeSpan);
    }

    private void Wake()
    {
        _timerArmedFor = long.MaxValue;
        _ingest.Wake();
    }

    private struct State
    {
        public long LastEmit;
        public long Seq;
        public bool Scheduled;
    }
}
