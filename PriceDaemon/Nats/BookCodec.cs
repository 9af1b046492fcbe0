using System.Buffers.Binary;
using PriceDaemon.Feeds;

namespace PriceDaemon.Nats;

/// <summary>
/// An order book on the same subject as its instrument's ticks, told apart by the version byte (<see cref="Version"/> 2;
/// ticks are <see cref="TickCodec.Version"/> 1): version (1), source (1), exchange time µs (long), publisher time µs
/// (long), bid levels (1), ask levels (1), then each level, bids best first then asks best first: price (double),
/// quantity (long), orders (int), 20 bytes. Little-endian, like ticks: exact doubles, no parser. An edge that knows only
/// version 1 counts a book as a malformed message and goes on with the ticks. Books are not written to the bucket: a
/// book is worth only its next update, so an edge started later shows depth from the next book on.
/// </summary>
internal static class BookCodec
{
    public const byte Version = 2;
    public const int HeaderSize = 20;
    public const int LevelSize = 20;
    public const int MaxSize = HeaderSize + (2 * DepthBook.MaxLevels * LevelSize);

    /// <summary>Writes <paramref name="book"/>; returns the bytes written.</summary>
    public static int Write(Span<byte> destination, DepthBook book, long publishedUs)
    {
        var bids = Math.Min(book.Bids.Length, DepthBook.MaxLevels);
        var asks = Math.Min(book.Asks.Length, DepthBook.MaxLevels);
        destination[0] = Version;
        destination[1] = (byte)book.Source;
        BinaryPrimitives.WriteInt64LittleEndian(destination[2..], book.ExchangeTimeUs);
        BinaryPrimitives.WriteInt64LittleEndian(destination[10..], publishedUs);
        destination[18] = (byte)bids;
        destination[19] = (byte)asks;
        var w = HeaderSize;
        foreach (var level in book.Bids.AsSpan(0, bids))
        {
            w += WriteLevel(destination[w..], level);
        }

        foreach (var level in book.Asks.AsSpan(0, asks))
        {
            w += WriteLevel(destination[w..], level);
        }

        return w;
    }

    /// <summary>False when <paramref name="source"/> is not a valid version 2 book (counted as malformed by the caller).</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, int instrumentId, long receivedTimestamp, out DepthBook? book, out long publishedUs)
    {
        book = null;
        publishedUs = 0;
        if (source.Length < HeaderSize || source[0] != Version || source[1] > (byte)PriceSource.Stored
            || source[18] > DepthBook.MaxLevels || source[19] > DepthBook.MaxLevels
            || source.Length != HeaderSize + ((source[18] + source[19]) * LevelSize))
        {
            return false;
        }

        var bids = new DepthLevel[source[18]];
        var asks = new DepthLevel[source[19]];
        var r = HeaderSize;
        for (var i = 0; i < bids.Length + asks.Length; i++, r += LevelSize)
        {
            var level = new DepthLevel(
                BinaryPrimitives.ReadDoubleLittleEndian(source[r..]),
                BinaryPrimitives.ReadInt64LittleEndian(source[(r + 8)..]),
                BinaryPrimitives.ReadInt32LittleEndian(source[(r + 16)..]));
            if (!double.IsFinite(level.Price) || level.Price <= 0 || level.Quantity <= 0 || level.Orders < 0)
            {
                return false;
            }

            (i < bids.Length ? bids : asks)[i < bids.Length ? i : i - bids.Length] = level;
        }

        publishedUs = BinaryPrimitives.ReadInt64LittleEndian(source[10..]);
        book = new DepthBook(instrumentId, bids, asks, BinaryPrimitives.ReadInt64LittleEndian(source[2..]), receivedTimestamp, (PriceSource)source[1]);
        return true;
    }

    private static int WriteLevel(Span<byte> destination, DepthLevel level)
    {
        BinaryPrimitives.WriteDoubleLittleEndian(destination, level.Price);
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], level.Quantity);
        BinaryPrimitives.WriteInt32LittleEndian(destination[16..], level.Orders);
        return LevelSize;
    }
}
