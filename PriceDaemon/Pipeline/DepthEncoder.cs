using System.Buffers.Text;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;

namespace PriceDaemon.Pipeline;

/// <summary>
/// Writes <c>depth</c> and <c>book</c> frames by hand, as <see cref="FrameEncoder"/> writes prices:
/// <c>{"type":"depth","instrument_key":"..","data":{"bids":[[2451.45,120,3]],"asks":[[2451.6,80,2]],"timestamp":"..","seq":17,"source":"live"}}</c>.
/// One exact-size array per frame, none per subscriber. Not thread-safe; the depth stage owns one.
/// </summary>
public sealed class DepthEncoder
{
    // A level is at most ~25 (price) + 20 (quantity) + 11 (orders) + 4 bytes; 30 of them a side.
    private const int MaxLevelBytes = 64;

    private static ReadOnlySpan<byte> DepthPrefix => "{\"type\":\"depth\",\"instrument_key\":\""u8;
    private static ReadOnlySpan<byte> BookPrefix => "{\"type\":\"book\",\"instrument_key\":\""u8;
    private static ReadOnlySpan<byte> Bids => "\",\"data\":{\"bids\":["u8;
    private static ReadOnlySpan<byte> Asks => "],\"asks\":["u8;
    private static ReadOnlySpan<byte> Timestamp => "],\"timestamp\":\""u8;
    private static ReadOnlySpan<byte> Seq => "\",\"seq\":"u8;
    private static ReadOnlySpan<byte> Source => ",\"source\":\""u8;
    private static ReadOnlySpan<byte> End => "\"}}"u8;

    private readonly bool _microseconds;
    private byte[] _scratch = new byte[1024];

    /// <param name="microseconds">Timestamps with 6 fractional digits (as <c>Feed:MicrosecondTimestamps</c> makes prices).</param>
    public DepthEncoder(bool microseconds = false)
    {
        _microseconds = microseconds;
    }

    /// <summary>The <c>depth</c> frame (best <see cref="DepthBook.DepthLevels"/> a side) or the <c>book</c> frame (all, up to 30).</summary>
    public DepthFrame Encode(Instrument instrument, DepthBook book, long seq, bool full)
    {
        var levels = full ? DepthBook.MaxLevels : DepthBook.DepthLevels;
        var needed = 256 + instrument.KeyJsonUtf8.Length + (2 * levels * MaxLevelBytes);
        if (_scratch.Length < needed)
        {
            _scratch = new byte[needed];
        }

        var buffer = _scratch.AsSpan();
        var w = 0;
        FrameEncoder.Append(buffer, ref w, full ? BookPrefix : DepthPrefix);
        FrameEncoder.Append(buffer, ref w, instrument.KeyJsonUtf8);
        FrameEncoder.Append(buffer, ref w, Bids);
        WriteSide(buffer, ref w, book.Bids, levels);
        FrameEncoder.Append(buffer, ref w, Asks);
        WriteSide(buffer, ref w, book.Asks, levels);
        FrameEncoder.Append(buffer, ref w, Timestamp);
        w += FrameEncoder.WriteTimestamp(book.ExchangeTimeUs, _microseconds, buffer[w..]);
        FrameEncoder.Append(buffer, ref w, Seq);
        Utf8Formatter.TryFormat(seq, buffer[w..], out var n);
        w += n;
        FrameEncoder.Append(buffer, ref w, Source);
        FrameEncoder.Append(buffer, ref w, FrameEncoder.SourceName(book.Source));
        FrameEncoder.Append(buffer, ref w, End);
        return new DepthFrame(book, seq, false, buffer[..w].ToArray());
    }

    /// <summary><c>[price,quantity,orders]</c> per level, best first.</summary>
    private static void WriteSide(Span<byte> buffer, ref int w, DepthLevel[] side, int levels)
    {
        var count = Math.Min(side.Length, levels);
        for (var i = 0; i < count; i++)
        {
            if (i > 0)
            {
                buffer[w++] = (byte)',';
            }

            buffer[w++] = (byte)'[';
            w += FrameEncoder.FormatNumber(side[i].Price, buffer[w..]);
            buffer[w++] = (byte)',';
            Utf8Formatter.TryFormat(side[i].Quantity, buffer[w..], out var n);
            w += n;
            buffer[w++] = (byte)',';
            Utf8Formatter.TryFormat(side[i].Orders, buffer[w..], out n);
            w += n;
            buffer[w++] = (byte)']';
        }
    }
}
