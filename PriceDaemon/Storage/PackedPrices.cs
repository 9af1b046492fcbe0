using System.Buffers.Binary;
using System.Text;

namespace PriceDaemon.Storage;

/// <summary>
/// Every stored price packed into a few binary blocks, each stored as one BSON binary value. Chunks of BSON
/// documents (one per price, eight named fields each) cost a flush of 2,000 prices about 3.7 MB of garbage:
/// every document, field and value is an object, and LiteDB walks each again to serialize it. A block is
/// written into an array kept from the last flush, so packing allocates nothing while the blocks keep their
/// sizes; an array is replaced only when its size changes (an instrument is added, or a price's source name
/// changes length, as from <c>stored</c> to <c>live</c> after a restart).
/// </summary>
/// <remarks>
/// Layout of a block, little-endian: one version byte (<see cref="Version"/>), then per price: key length
/// (ushort) and key (UTF-8), last price (double), volume (long), timestamp in µs (long), change percent
/// (double), previous close (double), seq (long), source length (byte) and source (UTF-8). No count: the
/// entries run to the end. Prices fill blocks in the dictionary's order (insertion order, as prices are never
/// removed), so the same prices land in the same blocks at every flush.
/// </remarks>
internal sealed class PackedPrices
{
    /// <summary>The format this code writes; a block of any other version is refused as damaged.</summary>
    public const byte Version = 1;

    private const int NumbersBytes = 6 * sizeof(long);

    // Bytes that are not UTF-8 mean a damaged block, not a key with replacement characters in it.
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly int _maxBlockBytes;
    private readonly List<byte[]> _blocks = [];
    private readonly List<int> _sizes = [];
    private readonly List<int> _counts = [];

    /// <param name="maxBlockBytes">A block stops growing here (one price may take it past); LiteDB's documents are bounded.</param>
    public PackedPrices(int maxBlockBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBlockBytes, 1);
        _maxBlockBytes = maxBlockBytes;
    }

    /// <summary>The blocks of the last <see cref="Pack"/>.</summary>
    public int Count => _counts.Count;

    /// <summary>Block <paramref name="index"/> of the last <see cref="Pack"/>: exactly its bytes.</summary>
    public byte[] this[int index] => _blocks[index];

    /// <summary>Packs <paramref name="prices"/> into blocks, reusing each block's array while its size is unchanged.</summary>
    public void Pack(Dictionary<string, StoredPrice> prices)
    {
        // First the sizes, so each block's array is exactly its bytes (a BSON binary value is the whole array).
        _sizes.Clear();
        _counts.Clear();
        var size = 1;
        var count = 0;
        foreach (var price in prices.Values)
        {
            var entry = EntrySize(price);
            if (count > 0 && size + entry > _maxBlockBytes)
            {
                _sizes.Add(size);
                _counts.Add(count);
                size = 1;
                count = 0;
            }

            size += entry;
            count++;
        }

        if (count > 0)
        {
            _sizes.Add(size);
            _counts.Add(count);
        }

        var values = prices.Values.GetEnumerator();
        for (var block = 0; block < _counts.Count; block++)
        {
            if (block == _blocks.Count)
            {
                _blocks.Add([]);
            }

            if (_blocks[block].Length != _sizes[block])
            {
                _blocks[block] = new byte[_sizes[block]];
            }

            var destination = _blocks[block].AsSpan();
            destination[0] = Version;
            var at = 1;
            for (var i = 0; i < _counts[block]; i++)
            {
                values.MoveNext();
                at += WriteEntry(values.Current, destination[at..]);
            }
        }

        _blocks.RemoveRange(_counts.Count, _blocks.Count - _counts.Count);
    }

    /// <summary>
    /// The prices in one block. Throws <see cref="InvalidDataException"/> for a version it does not know or
    /// bytes that do not parse; the caller checks the values.
    /// </summary>
    public static List<StoredPrice> Read(ReadOnlySpan<byte> block)
    {
        if (block.IsEmpty || block[0] != Version)
        {
            throw new InvalidDataException($"packed prices of version {(block.IsEmpty ? "(empty)" : block[0])}; this version reads {Version}");
        }

        var prices = new List<StoredPrice>();
        var rest = block[1..];
        while (!rest.IsEmpty)
        {
            var key = ReadString(ref rest, BinaryPrimitives.ReadUInt16LittleEndian(Take(ref rest, sizeof(ushort))));
            var numbers = Take(ref rest, NumbersBytes);
            var source = ReadString(ref rest, Take(ref rest, 1)[0]);
            prices.Add(new StoredPrice(
                key,
                BinaryPrimitives.ReadDoubleLittleEndian(numbers),
                BinaryPrimitives.ReadInt64LittleEndian(numbers[8..]),
                BinaryPrimitives.ReadInt64LittleEndian(numbers[16..]),
                BinaryPrimitives.ReadDoubleLittleEndian(numbers[24..]),
                BinaryPrimitives.ReadDoubleLittleEndian(numbers[32..]),
                BinaryPrimitives.ReadInt64LittleEndian(numbers[40..]),
                source));
        }

        return prices;
    }

    private static int EntrySize(in StoredPrice price)
    {
        var key = Encoding.UTF8.GetByteCount(price.Key);
        var source = Encoding.UTF8.GetByteCount(price.Source);
        if (key > ushort.MaxValue || source > byte.MaxValue)
        {
            throw new ArgumentException($"price '{price.Key}': key or source too long to store");
        }

        return sizeof(ushort) + key + NumbersBytes + 1 + source;
    }

    private static int WriteEntry(in StoredPrice price, Span<byte> destination)
    {
        var key = Encoding.UTF8.GetBytes(price.Key, destination[sizeof(ushort)..]);
        BinaryPrimitives.WriteUInt16LittleEndian(destination, (ushort)key);
        var numbers = destination.Slice(sizeof(ushort) + key, NumbersBytes);
        BinaryPrimitives.WriteDoubleLittleEndian(numbers, price.LastPrice);
        BinaryPrimitives.WriteInt64LittleEndian(numbers[8..], price.Volume);
        BinaryPrimitives.WriteInt64LittleEndian(numbers[16..], price.TimestampUs);
        BinaryPrimitives.WriteDoubleLittleEndian(numbers[24..], price.ChangePercent);
        BinaryPrimitives.WriteDoubleLittleEndian(numbers[32..], price.PreviousClose);
        BinaryPrimitives.WriteInt64LittleEndian(numbers[40..], price.Seq);
        var sourceAt = sizeof(ushort) + key + NumbersBytes;
        var source = Encoding.UTF8.GetBytes(price.Source, destination[(sourceAt + 1)..]);
        destination[sourceAt] = (byte)source;
        return sourceAt + 1 + source;
    }

    private static ReadOnlySpan<byte> Take(ref ReadOnlySpan<byte> rest, int count)
    {
        if (rest.Length < count)
        {
            throw new InvalidDataException("packed prices end inside an entry");
        }

        var taken = rest[..count];
        rest = rest[count..];
        return taken;
    }

    private static string ReadString(ref ReadOnlySpan<byte> rest, int length)
    {
        var bytes = Take(ref rest, length);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException ex)
        {
            throw new InvalidDataException("packed prices hold a string that is not UTF-8", ex);
        }
    }
}
