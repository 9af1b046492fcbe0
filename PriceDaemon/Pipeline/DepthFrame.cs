using PriceDaemon.Feeds;

namespace PriceDaemon.Pipeline;

/// <summary>
/// One emitted <c>depth</c> or <c>book</c> update, serialized once: the same bytes go to every subscriber of that
/// instrument's channel. Holds its <see cref="Book"/> so that a stale copy can be made without parsing.
/// </summary>
public sealed class DepthFrame : StreamFrame
{
    internal DepthFrame(DepthBook book, long seq, bool stale, byte[] utf8)
        : base(seq, book.ReceivedTimestamp, utf8)
    {
        Book = book;
        Stale = stale;
    }

    public int InstrumentId => Book.InstrumentId;

    public DepthBook Book { get; }

    /// <summary>The bytes carry <c>"stale": true</c>: served on subscribe while the feed is down.</summary>
    public bool Stale { get; }

    // Built on first need (a subscribe while the feed is down); a lost race only makes garbage.
    private DepthFrame? _stale;

    /// <summary>The same book labelled <c>"stale": true</c>, so a cached book never pretends to be live.</summary>
    public DepthFrame AsStale() => Stale ? this : Volatile.Read(ref _stale) ?? (_stale = new DepthFrame(Book, Seq, true, FrameEncoder.StaleCopy(Utf8.Span)));
}
