using System.Threading.Channels;
using Microsoft.Extensions.Options;
using PriceDaemon.Instruments;

namespace PriceDaemon.Feeds.Upstox;

/// <summary>
/// Which instruments the daemon wants from Upstox: those some client subscribed to (reference-counted), the
/// <see cref="UpstoxFeedOptions.AlwaysSubscribe"/> list, and those whose last client left less than
/// <see cref="UpstoxFeedOptions.UnsubscribeDelaySeconds"/> ago. Capped at Upstox's per-connection limit for
/// the mode; when the cap is reached, a lingering instrument (nobody wants it now) gives up its place before a
/// client is refused. The connection reads <see cref="Snapshot"/> and turns differences into sub/unsub requests.
/// </summary>
internal sealed partial class UpstoxSubscriptions : IUpstreamInterest
{
    private readonly Lock _gate = new();
    private readonly int[] _counts;
    private readonly bool[] _always;
    private readonly long[] _lingerUntil;
    private readonly HashSet<int> _lingering = [];
    private readonly HashSet<int> _desired = [];
    private readonly int _cap;
    private readonly int[] _depthCounts; // clients of the depth channel, per instrument
    private readonly int[] _bookCounts; // clients of the book channel, per instrument
    private readonly int _depthCap;
    private readonly int _bookCap;
    private readonly string _baseMode;
    private int _fullCount; // instruments in full mode (depth wanted, no book)
    private int _bookCount; // instruments in full_d30 mode
    private readonly long _lingerTicks;
    private readonly TimeProvider _time;
    private readonly FeedMetrics _metrics;

    // Capacity 1, DropWrite: a pending signal already says "look again"; more of them say nothing new.
    private readonly Channel<bool> _changed = Channel.CreateBounded<bool>(new BoundedChannelOptions(1)
    {
        FullMode = BoundedChannelFullMode.DropWrite,
        SingleReader = true,
        SingleWriter = false,
        AllowSynchronousContinuations = false,
    });

    public UpstoxSubscriptions(InstrumentRegistry instruments, IOptions<FeedOptions> options, FeedMetrics metrics, TimeProvider time, ILogger<UpstoxSubscriptions> logger)
    {
        var upstox = options.Value.Upstox;
        _time = time;
        _metrics = metrics;
        _cap = upstox.EffectiveMaxInstruments;
        _depthCap = upstox.MaxDepthInstruments;
        _bookCap = upstox.MaxBookInstruments;
        _baseMode = upstox.Mode;
        _depthCounts = new int[instruments.Count];
        _bookCounts = new int[instruments.Count];
        _lingerTicks = upstox.UnsubscribeDelaySeconds * time.TimestampFrequency;
        _counts = new int[instruments.Count];
        _always = new bool[instruments.Count];
        _lingerUntil = new long[instruments.Count];
        foreach (var key in upstox.AlwaysSubscribe)
        {
            if (!instruments.TryGet(key, out var instrument))
            {
                LogAlwaysUnknown(logger, key);
            }
            else if (_desired.Count >= _cap)
            {
                LogAlwaysOverCap(logger, key, _cap);
            }
            else
            {
                _always[instrument.Id] = true;
                _desired.Add(instrument.Id);
            }
        }
    }

    /// <summary>Instruments that count against the cap now (wanted, always, or lingering).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _desired.Count;
            }
        }
    }

    public bool Acquire(int instrumentId)
    {
        bool signal;
        lock (_gate)
        {
            if (!AcquireLocked(instrumentId, out signal))
            {
                return false;
            }
        }

        if (signal)
        {
            Signal();
        }

        return true;
    }

    private bool AcquireLocked(int instrumentId, out bool signal)
    {
        signal = false;
        if (_counts[instrumentId]++ > 0 || _always[instrumentId])
        {
            return true;
        }

        if (_lingering.Remove(instrumentId))
        {
            return true; // back before it left: still subscribed upstream, nothing to send
        }

        if (_desired.Count >= _cap && !EvictOldestLingering())
        {
            _counts[instrumentId] = 0;
            Interlocked.Increment(ref _metrics.UpstreamRejected);
            return false;
        }

        _desired.Add(instrumentId);
        signal = true;
        return true;
    }

    /// <summary>
    /// A client of the instrument's depth (<c>full</c>) or book (<c>full_d30</c>): counts as interest in the instrument,
    /// as a price subscription does, and raises its mode upstream. The first client of a mode takes a place under that
    /// mode's cap (the book's place replaces the depth's: one instrument has one mode); refused when it is full.
    /// </summary>
    public bool AcquireDepth(int instrumentId, bool book)
    {
        lock (_gate)
        {
            var before = DepthKind(instrumentId);
            if (book ? _bookCounts[instrumentId] == 0 && _bookCount >= _bookCap
                : _bookCounts[instrumentId] == 0 && _depthCounts[instrumentId] == 0 && _fullCount >= _depthCap)
            {
                Interlocked.Increment(ref _metrics.UpstreamRejected);
                return false;
            }

            if (!AcquireLocked(instrumentId, out _))
            {
                return false;
            }

            (book ? _bookCounts : _depthCounts)[instrumentId]++;
            CountModes(instrumentId, before);
        }

        Signal(); // a new instrument, or a mode change, or neither: the reconciler compares
        return true;
    }

    public void ReleaseDepth(int instrumentId, bool book)
    {
        lock (_gate)
        {
            var counts = book ? _bookCounts : _depthCounts;
            if (counts[instrumentId] > 0)
            {
                var before = DepthKind(instrumentId);
                counts[instrumentId]--;
                CountModes(instrumentId, before);
            }
        }

        Release(instrumentId);
        Signal(); // the mode may have fallen back even when other clients still want the instrument
    }

    /// <summary>The mode each of <paramref name="instruments"/> is wanted in now: <c>full_d30</c>, <c>full</c>, or the configured one.</summary>
    public Dictionary<int, string> ModesOf(IEnumerable<int> instruments)
    {
        lock (_gate)
        {
            return instruments.ToDictionary(static id => id, ModeLocked);
        }
    }

    /// <summary>Instruments wanted in <c>full</c> and in <c>full_d30</c> mode now.</summary>
    public (int Full, int FullD30) ModeCounts
    {
        get
        {
            lock (_gate)
            {
                return (_fullCount, _bookCount);
            }
        }
    }

    private string ModeLocked(int id) => DepthKind(id) switch
    {
        2 => "full_d30",
        1 => "full",
        _ => _baseMode,
    };

    /// <summary>0: no depth client; 1: depth clients only (full); 2: a book client (full_d30).</summary>
    private int DepthKind(int id) => _bookCounts[id] > 0 ? 2 : _depthCounts[id] > 0 ? 1 : 0;

    private void CountModes(int id, int before)
    {
        var after = DepthKind(id);
        _fullCount += (after == 1 ? 1 : 0) - (before == 1 ? 1 : 0);
        _bookCount += (after == 2 ? 1 : 0) - (before == 2 ? 1 : 0);
    }

    public void Release(int instrumentId)
    {
        lock (_gate)
        {
            if (_counts[instrumentId] == 0 || --_counts[instrumentId] > 0 || _always[instrumentId])
            {
                return;
            }

            if (_lingerTicks > 0)
            {
                _lingerUntil[instrumentId] = _time.GetTimestamp() + _lingerTicks;
                _lingering.Add(instrumentId);
            }
            else
            {
                _desired.Remove(instrumentId);
            }
        }

        // Also for a linger: the connection must learn when to wake up and let it go.
        Signal();
    }

    /// <summary>
    /// The instruments to hold upstream now, after letting go of those whose linger ended, and how long until
    /// the next linger ends (<see cref="Timeout.InfiniteTimeSpan"/> when none is lingering).
    /// </summary>
    public (HashSet<int> Desired, TimeSpan NextChange) Snapshot()
    {
        var now = _time.GetTimestamp();
        lock (_gate)
        {
            var next = long.MaxValue;
            List<int>? expired = null;
            foreach (var id in _lingering)
            {
                if (_lingerUntil[id] <= now)
                {
                    (expired ??= []).Add(id);
                }
                else
                {
                    next = Math.Min(next, _lingerUntil[id]);
                }
            }

            foreach (var id in expired ?? [])
            {
                _lingering.Remove(id);
                _desired.Remove(id);
            }

            var wait = next == long.MaxValue ? Timeout.InfiniteTimeSpan : _time.GetElapsedTime(now, next);
            return ([.. _desired], wait);
        }
    }

    /// <summary>Waits until the wanted set changes or <paramref name="timeout"/> passes; consumes the signal.</summary>
    public async Task WaitForChangeAsync(TimeSpan timeout, CancellationToken ct)
    {
        if (!_changed.Reader.TryRead(out _))
        {
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
            if (timeout != Timeout.InfiniteTimeSpan)
            {
                wait.CancelAfter(timeout < TimeSpan.Zero ? TimeSpan.Zero : timeout);
            }

            try
            {
                await _changed.Reader.WaitToReadAsync(wait.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                return; // the timeout: a linger ended
            }
        }

        _changed.Reader.TryRead(out _);
    }

    /// <summary>Drops a pending change signal: the caller is about to read a fresh snapshot anyway.</summary>
    public void ClearSignal() => _changed.Reader.TryRead(out _);

    private bool EvictOldestLingering()
    {
        var oldest = -1;
        foreach (var id in _lingering)
        {
            if (oldest < 0 || _lingerUntil[id] < _lingerUntil[oldest])
            {
                oldest = id;
            }
        }

        if (oldest < 0)
        {
            return false;
        }

        _lingering.Remove(oldest);
        _desired.Remove(oldest);
        return true;
    }

    private void Signal() => _changed.Writer.TryWrite(true);

    [LoggerMessage(EventId = 120, Level = LogLevel.Warning, Message = "Feed:Upstox:AlwaysSubscribe: '{Key}' is not in the instrument universe; ignored")]
    private static partial void LogAlwaysUnknown(ILogger logger, string key);

    [LoggerMessage(EventId = 121, Level = LogLevel.Warning, Message = "Feed:Upstox:AlwaysSubscribe: '{Key}' is beyond the upstream cap of {Cap} instruments; ignored")]
    private static partial void LogAlwaysOverCap(ILogger logger, string key, int cap);
}
