using System.Threading.Channels;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;

namespace PriceDaemon.Pipeline;

/// <summary>
/// Where feeds hand order books to the <see cref="DepthStage"/>: one mailbox per instrument holding its newest book,
/// and a queue of the instruments whose mailbox filled. A book replaces an unread one (latest book wins, counted in
/// <see cref="Replaced"/>), so the queue holds each instrument at most once and never grows with the feed's rate,
/// and a feed never waits for depth. Kept apart from the <see cref="IngestChannel"/> on purpose: the price path's
/// <see cref="Tick"/> stays the small value type it was, and with no depth subscriber nothing here runs at all.
/// </summary>
public sealed class DepthIngest
{
    // A wake-up id: a throttle window closed. Not an instrument.
    internal const int WakeId = -1;

    private readonly DepthBook?[] _pending;
    private readonly Channel<int> _ready;
    private Action<DepthBook>[] _taps = [];

    internal long Written;
    internal long Replaced;

    public DepthIngest(InstrumentRegistry instruments)
    {
        _pending = new DepthBook?[instruments.Count];
        // Each instrument is queued at most once (only when its mailbox was empty), plus wake-ups: never full in use.
        _ready = Channel.CreateBounded<int>(new BoundedChannelOptions(instruments.Count + 64)
        {
            FullMode = BoundedChannelFullMode.DropWrite,
            SingleReader = true,
            SingleWriter = false,
            AllowSynchronousContinuations = false,
        });
    }

    internal ChannelReader<int> Reader => _ready.Reader;

    /// <summary>Feed side: the instrument's newest book. Never blocks; a book not yet read is replaced.</summary>
    public void Write(DepthBook book)
    {
        if ((uint)book.InstrumentId >= (uint)_pending.Length)
        {
            return;
        }

        Interlocked.Increment(ref Written);
        foreach (var tap in Volatile.Read(ref _taps))
        {
            tap(book);
        }

        if (Interlocked.Exchange(ref _pending[book.InstrumentId], book) is null)
        {
            _ready.Writer.TryWrite(book.InstrumentId);
        }
        else
        {
            Interlocked.Increment(ref Replaced);
        }
    }

    /// <summary>
    /// Also hands every book written from now on to <paramref name="tap"/> (a recording, a NATS publisher), on the
    /// feed's thread before the stage sees it: a tap must not block.
    /// </summary>
    public void AddTap(Action<DepthBook> tap)
    {
        lock (_pending)
        {
            _taps = [.. _taps, tap];
        }
    }

    /// <summary>Stage side: the instrument's unread book, emptying its mailbox; null when there is none.</summary>
    internal DepthBook? Take(int instrumentId) => Interlocked.Exchange(ref _pending[instrumentId], null);

    internal bool HasPending(int instrumentId) => Volatile.Read(ref _pending[instrumentId]) is not null;

    internal void Wake() => _ready.Writer.TryWrite(WakeId);

    internal void Complete() => _ready.Writer.TryComplete();
}
