using System.Buffers.Binary;

namespace PriceDaemon.Candles;

/// <summary>
/// One block of closed bars as <see cref="CandleStore"/> keeps it: the bars of one chunk of instruments (a slot each)
/// whose start falls in one period of one interval, packed into one array that grows as bars are put in and is reused
/// for the chunk's next period, so that putting a bar allocates nothing once the array has grown to a period's bars.
/// </summary>
/// <remarks>
/// Layout, little-endian: a version byte (<see cref="Version"/>), then entries sorted by start and slot, each the
/// start (long, Unix µs), the slot (byte), open, high, low and close (double) and volume (long); no count, the entries
/// run to the end. Sorted, a range read stops at the first entry before it and pruning removes a prefix; bars closing
/// in time order are appended.
/// </remarks>
internal sealed class BarBlock
{
    public const byte Version = 1;
    public const int EntryBytes = 49;

    private byte[] _bytes = new byte[1 + (CandleStore.BlockInstruments * EntryBytes)];

    public BarBlock(int interval, int chunk, long period)
    {
        Reset(interval, chunk, period);
    }

    public int Interval { get; private set; }

    public int Chunk { get; private set; }

    /// <summary>The period the block covers (<see cref="CandleStore.Period"/>); <see cref="long.MinValue"/> for "none yet".</summary>
    public long Period { get; private set; }

    /// <summary>The packed bytes: the version byte and the entries.</summary>
    public ReadOnlySpan<byte> Packed => _bytes.AsSpan(0, Length);

    public int Length { get; private set; }

    public int Count => (Length - 1) / EntryBytes;

    /// <summary>Makes this the empty block of another period (or chunk), keeping the array.</summary>
    public void Reset(int interval, int chunk, long period)
    {
        Interval = interval;
        Chunk = chunk;
        Period = period;
        _bytes[0] = Version;
        Length = 1;
    }

    /// <summary>Takes the entries of a stored block (checked by <see cref="Check"/>).</summary>
    public void Load(ReadOnlySpan<byte> packed)
    {
        Check(packed);
        Grow(packed.Length);
        packed.CopyTo(_bytes);
        Length = packed.Length;
    }

    /// <summary>Puts a bar in the slot's place: replaces the entry of the same slot and start, or inserts it in order.</summary>
    public void Put(int slot, in Bar bar)
    {
        // Bars close in time order, so the place is nearly always the end: look there first.
        var count = Count;
        int at;
        if (count == 0 || Compare(_bytes, count - 1, bar.StartUs, slot) < 0)
        {
            at = count;
        }
        else
        {
            var (lo, hi) = (0, count - 1);
            while (lo <= hi)
            {
                var mid = (lo + hi) >>> 1;
                var c = Compare(_bytes, mid, bar.StartUs, slot);
                if (c == 0)
                {
                    WriteEntry(_bytes.AsSpan(1 + (mid * EntryBytes)), slot, bar);
                    return;
                }

                (lo, hi) = c < 0 ? (mid + 1, hi) : (lo, mid - 1);
            }

            at = lo;
        }

        Grow(Length + EntryBytes);
        var offset = 1 + (at * EntryBytes);
        _bytes.AsSpan(offset, Length - offset).CopyTo(_bytes.AsSpan(offset + EntryBytes));
        WriteEntry(_bytes.AsSpan(offset), slot, bar);
        Length += EntryBytes;
    }

    /// <summary>Removes the bars that start before <paramref name="beforeUs"/>; returns how many.</summary>
    public int RemoveBefore(long beforeUs)
    {
        var count = Count;
        var removed = 0;
        while (removed < count && StartAt(_bytes, removed) < beforeUs)
        {
            removed++;
        }

        if (removed > 0)
        {
            var from = 1 + (removed * EntryBytes);
            _bytes.AsSpan(from, Length - from).CopyTo(_bytes.AsSpan(1));
            Length -= removed * EntryBytes;
        }

        return removed;
    }

    /// <summary>Throws <see cref="InvalidDataException"/> unless <paramref name="packed"/> is a block this code can read.</summary>
    public static void Check(ReadOnlySpan<byte> packed)
    {
        if (packed.Length == 0 || packed[0] != Version || (packed.Length - 1) % EntryBytes != 0)
        {
            throw new InvalidDataException($"a block of closed bars is not version {Version} with whole entries of {EntryBytes} bytes ({packed.Length} bytes)");
        }
    }

    public static int CountOf(ReadOnlySpan<byte> packed) => (packed.Length - 1) / EntryBytes;

    public static long StartAt(ReadOnlySpan<byte> packed, int entry) =>
        BinaryPrimitives.ReadInt64LittleEndian(packed[(1 + (entry * EntryBytes))..]);

    public static int SlotAt(ReadOnlySpan<byte> packed, int entry) => packed[1 + (entry * EntryBytes) + 8];

    /// <summary>The bar of an entry, closed, without its end (history never needed it).</summary>
    public static Bar BarAt(ReadOnlySpan<byte> packed, int entry)
    {
        var e = packed[(1 + (entry * EntryBytes))..];
        return new Bar
        {
            StartUs = BinaryPrimitives.ReadInt64LittleEndian(e),
            Open = BinaryPrimitives.ReadDoubleLittleEndian(e[9..]),
            High = BinaryPrimitives.ReadDoubleLittleEndian(e[17..]),
            Low = BinaryPrimitives.ReadDoubleLittleEndian(e[25..]),
            Close = BinaryPrimitives.ReadDoubleLittleEndian(e[33..]),
            Volume = BinaryPrimitives.ReadInt64LittleEndian(e[41..]),
        };
    }

    private static int Compare(ReadOnlySpan<byte> packed, int entry, long startUs, int slot)
    {
        var c = StartAt(packed, entry).CompareTo(startUs);
        return c != 0 ? c : SlotAt(packed, entry).CompareTo(slot);
    }

    private static void WriteEntry(Span<byte> e, int slot, in Bar bar)
    {
        BinaryPrimitives.WriteInt64LittleEndian(e, bar.StartUs);
        e[8] = (byte)slot;
        BinaryPrimitives.WriteDoubleLittleEndian(e[9..], bar.Open);
        BinaryPrimitives.WriteDoubleLittleEndian(e[17..], bar.High);
        BinaryPrimitives.WriteDoubleLittleEndian(e[25..], bar.Low);
        BinaryPrimitives.WriteDoubleLittleEndian(e[33..], bar.Close);
        BinaryPrimitives.WriteInt64LittleEndian(e[41..], bar.Volume);
    }

    private void Grow(int length)
    {
        if (_bytes.Length < length)
        {
            Array.Resize(ref _bytes, Math.Max(length, _bytes.Length * 2));
        }
    }
}
