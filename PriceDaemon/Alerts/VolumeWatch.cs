using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Push;
using PriceDaemon.Sockets;

namespace PriceDaemon.Alerts;

/// <summary>
/// Unusual volume: per instrument, the shares traded in the current minute (from the cumulative volume of every tick,
/// before the throttle) against the median of the last <see cref="VolumeAlertOptions.BaselineMinutes"/> one-minute
/// volumes (minutes without a trade count as 0). Over <see cref="VolumeAlertOptions.Multiple"/> times the median and at
/// least <see cref="VolumeAlertOptions.MinShares"/>, at most once per cooldown, it sends a <c>volume_alert</c> frame to
/// the sockets subscribed to the <c>volume_alerts</c> channel for that instrument (or for all).
/// </summary>
/// <remarks>
/// Minutes are the exchange time's calendar minutes. The tick path does fixed arithmetic on preallocated arrays (the
/// median is sorted in place once per minute roll, not per tick) and hands a fire to this service's loop through a
/// bounded queue; the loop writes the frame and queues it on the subscribed sockets.
/// </remarks>
internal sealed partial class VolumeWatch : BackgroundService, ITickObserver
{
    private const long MinuteUs = 60_000_000;

    private readonly InstrumentRegistry _instruments;
    private readonly VolumeAlertOptions _options;
    private readonly ILogger<VolumeWatch> _logger;
    private readonly State[] _state;
    private readonly long[] _ring; // BaselineMinutes per instrument, oldest overwritten first
    private readonly long[] _scratch; // the median's sort, on the tick thread only
    private readonly int _window;
    private readonly long _cooldownUs;
    private readonly Channel<VolumeEvent> _fired = Channel.CreateBounded<VolumeEvent>(
        new BoundedChannelOptions(1024) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
    private readonly ConcurrentDictionary<long, Interest> _subscribers = new();

    internal long Fired;

    public VolumeWatch(InstrumentRegistry instruments, IOptions<AlertOptions> options, ILogger<VolumeWatch> logger)
    {
        _instruments = instruments;
        _options = options.Value.Volume;
        _logger = logger;
        _window = _options.BaselineMinutes;
        _cooldownUs = _options.CooldownSeconds * 1_000_000L;
        _state = new State[instruments.Count];
        _ring = new long[instruments.Count * _window];
        _scratch = new long[_window];
    }

    /// <inheritdoc />
    public void Observe(in Tick tick)
    {
        ref var s = ref _state[tick.InstrumentId];
        var minute = tick.ExchangeTimeUs / MinuteUs;
        // The first tick only sets the level the next ones count from; a volume that falls is a new day's.
        var traded = s.LastVolume > 0 && tick.Volume >= s.LastVolume ? tick.Volume - s.LastVolume : 0;
        s.LastVolume = tick.Volume;
        if (minute != s.Minute)
        {
            if (s.Minute != 0 && minute > s.Minute)
            {
                Roll(ref s, tick.InstrumentId, minute);
            }

            s.Minute = minute;
            s.Current = 0;
        }

        s.Current += traded;
        if (s.Filled < _options.MinBaselineMinutes || s.Current < _options.MinShares || s.Current <= _options.Multiple * s.Baseline)
        {
            return;
        }

        if (s.LastAlertUs != 0 && tick.ExchangeTimeUs - s.LastAlertUs < _cooldownUs)
        {
            return;
        }

        s.LastAlertUs = tick.ExchangeTimeUs;
        Fired++;
        _fired.Writer.TryWrite(new VolumeEvent(tick.InstrumentId, s.Current, s.Baseline, tick.ExchangeTimeUs));
    }

    /// <summary>Closes the instrument's minute (and any empty minutes after it) into the ring, and takes the new median.</summary>
    private void Roll(ref State s, int id, long minute)
    {
        var ring = _ring.AsSpan(id * _window, _window);
        var closed = Math.Min(minute - s.Minute, _window);
        for (var i = 0; i < closed; i++)
        {
            ring[s.Head] = i == 0 ? s.Current : 0;
            s.Head = (s.Head + 1) % _window;
            s.Filled = Math.Min(s.Filled + 1, _window);
        }

        var scratch = _scratch.AsSpan(0, s.Filled);
        // Filled < window only before the ring wraps: the filled entries are then the first ones.
        ring[..s.Filled].CopyTo(scratch);
        scratch.Sort();
        var n = scratch.Length;
        s.Baseline = n % 2 == 1 ? scratch[n / 2] : (scratch[(n / 2) - 1] + scratch[n / 2]) / 2.0;
    }

    /// <summary>Adds <paramref name="ids"/> (null: every instrument) to what <paramref name="session"/> hears of.</summary>
    public IReadOnlyCollection<string> Subscribe(PriceSession session, IReadOnlyCollection<int>? ids)
    {
        var interest = _subscribers.GetOrAdd(session.Id, static (_, s) => new Interest(s), session);
        lock (interest)
        {
            if (ids is null)
            {
                interest.All = true;
            }
            else
            {
                interest.Ids.UnionWith(ids);
            }

            return Held(interest);
        }
    }

    /// <summary>Drops <paramref name="ids"/> (null: everything) from what <paramref name="session"/> hears of.</summary>
    public IReadOnlyCollection<string> Unsubscribe(PriceSession session, IReadOnlyCollection<int>? ids)
    {
        if (!_subscribers.TryGetValue(session.Id, out var interest))
        {
            return [];
        }

        lock (interest)
        {
            if (ids is null)
            {
                interest.All = false;
                interest.Ids.Clear();
            }
            else
            {
                interest.Ids.ExceptWith(ids);
            }

            if (!interest.All && interest.Ids.Count == 0)
            {
                _subscribers.TryRemove(session.Id, out _);
            }

            return Held(interest);
        }
    }

    /// <summary>The socket is gone.</summary>
    public void Remove(PriceSession session) => _subscribers.TryRemove(session.Id, out _);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var fired in _fired.Reader.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                var instrument = _instruments[fired.InstrumentId];
                LogUnusualVolume(instrument.Key, fired.Volume, fired.Baseline);
                byte[]? frame = null;
                foreach (var interest in _subscribers.Values)
                {
                    bool wanted;
                    lock (interest)
                    {
                        wanted = interest.All || interest.Ids.Contains(fired.InstrumentId);
                    }

                    if (wanted)
                    {
                        interest.Session.EnqueueControl(frame ??= Frame(instrument.Key, fired));
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary><c>{"type":"volume_alert","instrument_key":..,"data":{"volume_1m":..,"baseline":..,"ratio":..,"timestamp":..}}</c>.</summary>
    internal static byte[] Frame(string key, VolumeEvent fired) => ControlFrames.Write(w =>
    {
        w.WriteString("type", "volume_alert");
        w.WriteString("instrument_key", key);
        w.WriteStartObject("data");
        w.WriteNumber("volume_1m", fired.Volume);
        w.WriteNumber("baseline", fired.Baseline);
        w.WriteNumber("ratio", fired.Baseline > 0 ? Math.Round(fired.Volume / fired.Baseline, 2) : 0);
        w.WriteString("timestamp", PushFrames.Timestamp(DateTimeOffset.FromUnixTimeMilliseconds(fired.ExchangeTimeUs / 1000)));
        w.WriteEndObject();
    });

    private List<string> Held(Interest interest) =>
        interest.All ? ["*"] : [.. interest.Ids.Order().Select(id => _instruments[id].Key)];

    internal readonly record struct VolumeEvent(int InstrumentId, long Volume, double Baseline, long ExchangeTimeUs);

    private struct State
    {
        public long LastVolume;
        public long Minute; // exchange-time minute being counted; 0 before the first tick
        public long Current; // shares traded in it so far
        public int Head; // next ring slot
        public int Filled; // closed minutes in the ring
        public double Baseline; // median of the ring, taken at the last roll
        public long LastAlertUs;
    }

    private sealed class Interest(PriceSession session)
    {
        public PriceSession Session { get; } = session;

        public readonly HashSet<int> Ids = [];
        public bool All;
    }

    [LoggerMessage(EventId = 385, Level = LogLevel.Information, Message = "Unusual volume on {Key}: {Volume} shares this minute against a median of {Baseline}")]
    private partial void LogUnusualVolume(string key, long volume, double baseline);
}
