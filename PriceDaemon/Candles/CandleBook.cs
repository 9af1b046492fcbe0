using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Candles;

/// <summary>One version of a bar on the candle channel: <c>{"type":"candle",...}</c>.</summary>
internal sealed class CandleFrame(long seq, byte[] utf8) : StreamFrame(seq, 0, utf8);

/// <summary>
/// Every instrument's forming bars at each interval, built from every tick on the throttle thread (before the throttle
/// merges any, so a high reached only by a merged tick is the bar's high), and the candle channel's last values. The
/// tick path only updates structs under the instrument's own lock, which the <see cref="CandleService"/> takes for a
/// copy at the throttle rate: no allocation per tick, no lock a socket thread holds. A bar that rolls over is queued
/// (once per bar, not per tick) for the service to store and announce with <c>closed: true</c>.
/// </summary>
/// <remarks>
/// Volume is the traded quantity: the difference of the feed's cumulative day volume between two ticks of the same
/// trading day. The first tick of a day counts its whole cumulative volume when the book saw the day before (the day's
/// volume restarted from zero), and nothing when the book has no earlier tick at all (it cannot tell how much of the
/// day's volume came before it started). A tick older than its instrument's newest bar (late, or out of order) moves
/// no price of a closed bar: its volume is counted in the newest bar, so the day's total stays right.
/// A subscription's key in this source is <c>instrumentId * 5 + interval</c>.
/// </remarks>
internal sealed class CandleBook : ITickObserver, IFrameSource
{
    private readonly CandleSession _session;
    private readonly InstrumentRegistry _instruments;
    private readonly TimeProvider _time;
    private readonly State[] _state;
    private readonly ConcurrentQueue<ClosedBar> _closed = new();

    // One bit per instrument whose bars changed since the service last took it, set when its Dirty flag goes from
    // false to true (once per pass, not per tick): the service's pass walks these words, not every instrument.
    private readonly long[] _changed;

    // The candle channel, by key. Latest and subscribers are read by send passes and sessions; written by the service.
    private readonly CandleFrame?[] _latest;
    private readonly Subscription[][] _subscribers;
    private readonly Lock _subscribersLock = new();

    // Exchange time minus the daemon's clock, from the newest tick: the service closes bars by this clock, so a replay
    // of an old day closes its bars as its own time passes, not at once. long.MinValue until the first tick.
    private long _exchangeOffsetUs = long.MinValue;
    private long _newestExchangeUs = long.MinValue;

    internal long LateTicks;

    public CandleBook(InstrumentRegistry instruments, IOptions<CandleOptions> options, IOptions<FeedOptions> feed, TimeProvider time)
        : this(instruments, new CandleSession(options.Value, options.Value.IncludeOutsideSession ?? feed.Value.Source.Equals("Simulated", StringComparison.OrdinalIgnoreCase)), time)
    {
    }

    internal CandleBook(InstrumentRegistry instruments, CandleSession session, TimeProvider time)
    {
        _instruments = instruments;
        _session = session;
        _time = time;
        _state = new State[instruments.Count];
        for (var i = 0; i < _state.Length; i++)
        {
            _state[i] = new State(i);
        }

        _changed = new long[(instruments.Count + 63) / 64];

        _latest = new CandleFrame?[instruments.Count * CandleIntervals.Count];
        _subscribers = new Subscription[_latest.Length][];
        Array.Fill(_subscribers, []);
    }

    public CandleSession Session => _session;

    public InstrumentRegistry Instruments => _instruments;

    public static int Key(int instrumentId, int interval) => (instrumentId * CandleIntervals.Count) + interval;

    /// <summary>The throttle thread, for every valid tick.</summary>
    public void Observe(in Tick tick)
    {
        var state = _state[tick.InstrumentId];
        var time = tick.ExchangeTimeUs;
        if (time > _newestExchangeUs)
        {
            _newestExchangeUs = time;
            Volatile.Write(ref _exchangeOffsetUs, time - (_time.GetUtcNow().Ticks - DateTime.UnixEpoch.Ticks) / 10);
        }

        lock (state.Gate)
        {
            var traded = Traded(state, tick.Volume, _session.TradingDay(time));
            ref var minute = ref state.Bars[0];
            if (minute.Forming && time >= minute.StartUs && time < minute.EndUs)
            {
                // Inside the forming minute, so inside every longer interval's forming bar too (they nest: one grid
                // anchored at the open, the longer ones ending at the close). The common case: no bucket arithmetic.
                foreach (ref var bar in state.Bars.AsSpan())
                {
                    if (bar.Forming)
                    {
                        Update(ref bar, tick.LastPrice, traded);
                    }
                }

                MarkDirty(state);
                return;
            }

            for (var interval = 0; interval < CandleIntervals.Count; interval++)
            {
                if (!_session.Bucket(time, interval, out var start, out var end))
                {
                    break; // outside the session: no interval has a bar for it
                }

                ref var bar = ref state.Bars[interval];
                if (bar.Forming && bar.StartUs == start)
                {
                    Update(ref bar, tick.LastPrice, traded);
                }
                else if (start > bar.StartUs)
                {
                    if (bar.Forming)
                    {
                        bar.Forming = false;
                        _closed.Enqueue(new ClosedBar(tick.InstrumentId, interval, bar));
                    }

                    bar = Bar.Start(start, end, tick.LastPrice, traded);
                }
                else
                {
                    // Older than the newest bar: its price is history, its quantity still traded.
                    if (bar.Forming)
                    {
                        bar.Volume += traded;
                    }

                    if (interval == 0)
                    {
                        LateTicks++;
                    }
                }
            }

            MarkDirty(state);
        }
    }

    /// <summary>Under the instrument's lock: its bars changed; the first change since the service took them marks its bit.</summary>
    private void MarkDirty(State state)
    {
        if (!state.Dirty)
        {
            state.Dirty = true;
            Interlocked.Or(ref _changed[state.Id >> 6], 1L << state.Id);
        }
    }

    private static void Update(ref Bar bar, double price, long traded)
    {
        if (price > bar.High)
        {
            bar.High = price;
        }

        if (price < bar.Low)
        {
            bar.Low = price;
        }

        bar.Close = price;
        bar.Volume += traded;
    }

    /// <summary>The traded quantity since the instrument's previous tick (see remarks); updates the baseline.</summary>
    private static long Traded(State state, long cumulative, int day)
    {
        if (day < state.VolumeDay)
        {
            return 0; // a tick of an earlier day, out of order: the day's baseline is today's
        }

        long traded;
        if (day == state.VolumeDay)
        {
            // A cumulative volume that went down (a feed's reset) counts nothing until it passes the old one.
            traded = cumulative > state.CumulativeVolume ? cumulative - state.CumulativeVolume : 0;
        }
        else
        {
            traded = state.VolumeDay != 0 ? cumulative : 0;
        }

        if (day != state.VolumeDay || cumulative > state.CumulativeVolume)
        {
            state.CumulativeVolume = cumulative;
        }

        state.VolumeDay = day;
        return traded;
    }

    /// <summary>The exchange's time now by the newest tick and the daemon's clock since; null before the first tick.</summary>
    public long? ExchangeNowUs()
    {
        var offset = Volatile.Read(ref _exchangeOffsetUs);
        return offset == long.MinValue ? null : ((_time.GetUtcNow().Ticks - DateTime.UnixEpoch.Ticks) / 10) + offset;
    }

    /// <summary>
    /// The service: the instruments marked changed since its last call, into <paramref name="ids"/> (appended, ascending).
    /// Each word's bits are taken before any of its instruments is read, so a change made after that marks again.
    /// </summary>
    public void TakeChangedInstruments(List<int> ids)
    {
        for (var word = 0; word < _changed.Length; word++)
        {
            if (Volatile.Read(ref _changed[word]) == 0)
            {
                continue;
            }

            var bits = Interlocked.Exchange(ref _changed[word], 0);
            while (bits != 0)
            {
                ids.Add((word << 6) + System.Numerics.BitOperations.TrailingZeroCount(bits));
                bits &= bits - 1;
            }
        }
    }

    /// <summary>
    /// The service: copies <paramref name="instrumentId"/>'s bars into <paramref name="bars"/> if a tick changed them
    /// since the last call, closing first every forming bar that ended before <paramref name="closeBeforeUs"/> with no
    /// later trade. <paramref name="formingEndUs"/> is the earliest end of a bar still forming (long.MaxValue when none):
    /// until the clock passes it, this instrument has nothing to close by time unless a tick changes it first.
    /// </summary>
    public bool TakeChanged(int instrumentId, Span<Bar> bars, long closeBeforeUs, out long formingEndUs)
    {
        var state = _state[instrumentId];
        formingEndUs = long.MaxValue;
        lock (state.Gate)
        {
            for (var interval = 0; interval < CandleIntervals.Count; interval++)
            {
                ref var bar = ref state.Bars[interval];
                if (!bar.Forming)
                {
                    continue;
                }

                if (bar.EndUs <= closeBeforeUs)
                {
                    bar.Forming = false;
                    _closed.Enqueue(new ClosedBar(instrumentId, interval, bar));
                    state.Dirty = true;
                }
                else if (bar.EndUs < formingEndUs)
                {
                    formingEndUs = bar.EndUs;
                }
            }

            if (!state.Dirty)
            {
                return false;
            }

            state.Dirty = false;
            state.Bars.CopyTo(bars);
            return true;
        }
    }

    /// <summary>The bars of one instrument as they are now (for REST and persistence).</summary>
    public void Read(int instrumentId, Span<Bar> bars, out long cumulativeVolume, out int volumeDay)
    {
        var state = _state[instrumentId];
        lock (state.Gate)
        {
            state.Bars.CopyTo(bars);
            cumulativeVolume = state.CumulativeVolume;
            volumeDay = state.VolumeDay;
        }
    }

    /// <summary>At start, before any tick: the bars and volume baseline the file held, so the forming bar resumes.</summary>
    public void Restore(int instrumentId, ReadOnlySpan<Bar> bars, long cumulativeVolume, int volumeDay)
    {
        var state = _state[instrumentId];
        lock (state.Gate)
        {
            bars.CopyTo(state.Bars);
            state.CumulativeVolume = cumulativeVolume;
            state.VolumeDay = volumeDay;
            MarkDirty(state);
        }
    }

    /// <summary>Marks an instrument changed, so the service's next pass copies its bars (a new subscriber wants them).</summary>
    public void Touch(int instrumentId)
    {
        var state = _state[instrumentId];
        lock (state.Gate)
        {
            MarkDirty(state);
        }
    }

    public bool TryTakeClosed(out ClosedBar closed) => _closed.TryDequeue(out closed);

    public StreamFrame? Latest(int key) => Volatile.Read(ref _latest[key]);

    /// <summary>
    /// The service: makes <paramref name="frame"/> the key's newest and returns who to offer it to; nothing when the key
    /// has no subscriber by now, so that a key nobody holds never keeps a frame that would go stale (see Unsubscribe).
    /// A subscriber added after this reads the frame itself.
    /// </summary>
    internal Subscription[] PublishLatest(int key, CandleFrame frame)
    {
        lock (_subscribersLock)
        {
            var subscribers = _subscribers[key];
            if (subscribers.Length > 0)
            {
                Volatile.Write(ref _latest[key], frame);
            }

            return subscribers;
        }
    }

    public Subscription[] Subscribers(int key) => Volatile.Read(ref _subscribers[key]);

    /// <summary>Receive loop: from now on each new version of the key's bar is offered to <paramref name="subscription"/>.</summary>
    public void Subscribe(Subscription subscription)
    {
        var key = subscription.InstrumentId;
        lock (_subscribersLock)
        {
            _subscribers[key] = [.. _subscribers[key], subscription];
        }
    }

    public void Unsubscribe(Subscription subscription)
    {
        var key = subscription.InstrumentId;
        lock (_subscribersLock)
        {
            _subscribers[key] = Array.FindAll(_subscribers[key], s => s != subscription);
            if (_subscribers[key].Length == 0)
            {
                // Nobody keeps it current now: the next first subscriber must not be offered a bar from long ago.
                Volatile.Write(ref _latest[key], null);
            }
        }
    }

    private sealed class State(int id)
    {
        public readonly int Id = id;
        public readonly Lock Gate = new();
        public readonly Bar[] Bars = new Bar[CandleIntervals.Count];
        public long CumulativeVolume;
        public int VolumeDay;
        public bool Dirty;
    }
}
