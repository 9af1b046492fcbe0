using System.Buffers.Binary;
using PriceDaemon.Feeds;

namespace PriceDaemon.Nats;

/// <summary>One tick as it travels over NATS and rests in the bucket, decoded.</summary>
/// <param name="PublishedUs">The publisher's wall clock when it took the tick, Unix µs: the edge measures the NATS hop against it.</param>
internal readonly record struct WireTick(double LastPrice, long Volume, long ExchangeTimeUs, double PreviousClose, PriceSource Source, long PublishedUs);

/// <summary>
/// A fixed 42-byte little-endian layout: version (1), source (1), last price (double), cumulative volume (long),
/// exchange time µs (long), previous close (double, 0 = unknown), publisher time µs (long). The subject already names
/// the instrument, so the payload needs no key; fixed offsets mean no parser, no allocation beyond the message, and
/// exact doubles. JSON would be ~3x larger and need a parser per message on every edge. The version byte lets an old
/// edge count a newer layout as malformed instead of misreading it.
/// </summary>
internal static class TickCodec
{
    public const int Size = 42;
    public const byte Version = 1;

    public static void Write(Span<byte> destination, in Tick tick, long publishedUs)
    {
        destination[0] = Version;
        destination[1] = (byte)tick.Source;
        BinaryPrimitives.WriteDoubleLittleEndian(destination[2..], tick.LastPrice);
        BinaryPrimitives.WriteInt64LittleEndian(destination[10..], tick.Volume);
        BinaryPrimitives.WriteInt64LittleEndian(destination[18..], tick.ExchangeTimeUs);
        BinaryPrimitives.WriteDoubleLittleEndian(destination[26..], tick.PreviousClose);
        BinaryPrimitives.WriteInt64LittleEndian(destination[34..], publishedUs);
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out WireTick tick)
    {
        tick = default;
        if (source.Length < Size || source[0] != Version || source[1] > (byte)PriceSource.Stored)
        {
            return false;
        }

        var price = BinaryPrimitives.ReadDoubleLittleEndian(source[2..]);
        var previousClose = BinaryPrimitives.ReadDoubleLittleEndian(source[26..]);
        if (!double.IsFinite(price) || price <= 0 || !double.IsFinite(previousClose) || previousClose < 0)
        {
            return false;
        }

        tick = new WireTick(
            price,
            BinaryPrimitives.ReadInt64LittleEndian(source[10..]),
            BinaryPrimitives.ReadInt64LittleEndian(source[18..]),
            previousClose,
            (PriceSource)source[1],
            BinaryPrimitives.ReadInt64LittleEndian(source[34..]));
        return true;
    }
}
