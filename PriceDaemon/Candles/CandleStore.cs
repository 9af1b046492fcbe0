using System.Buffers.Binary;
using System.Text;
using LiteDB;

namespace PriceDaemon.Candles;

/// <summary>
/// The LiteDB file of bars: closed bars in one collection per interval (<c>bars_1m</c>, ...), one document per bar,
/// and each instrument's newest bars with its volume baseline packed into a few <c>forming</c> documents of
/// <see cref="FormingChunk"/> instruments each (LiteDB costs about 7 KB of allocation per document written, so one per
/// instrument a second was most of the daemon's allocation), so a restart resumes the forming bar.
/// A bar's id is its instrument key's UTF-8, a zero byte and its start as a big-endian number: ids sort by
/// instrument, then time, so an instrument's range is one walk of the primary index. Thread-safe as LiteDB is:
/// the service writes, sessions and REST read.
/// </summary>
internal sealed class CandleStore : IDisposable
{
    private const string FormingCollection = "forming";

    private readonly LiteDatabase _db;

    private CandleStore(string path, LiteDatabase db)
    {
        Path = path;
        _db = db;
    }

    public string Path { get; }

    public static CandleStore Open(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        var db = new LiteDatabase(new ConnectionString { Filename = full, Connection = ConnectionType.Direct });
        try
        {
            for (var interval = 0; interval < CandleIntervals.Count; interval++)
            {
                db.GetCollection(Collection(interval)).EnsureIndex("t");
            }
        }
        catch
        {
            db.Dispose();
            throw;
        }

        return new CandleStore(full, db);
    }

    /// <summary>Instruments per <c>forming</c> document: a flush rewrites whole chunks, a few documents, not one per instrument.</summary>
    public const int FormingChunk = 64;

    /// <summary>Each instrument's newest bars (forming or just closed) and volume baseline, as the last flush left them.</summary>
    public IEnumerable<(string Key, Bar[] Bars, long CumulativeVolume, int VolumeDay)> LoadForming()
    {
        foreach (var doc in _db.GetCollection(FormingCollection).FindAll())
        {
            var packed = doc["p"].AsBinary ?? throw new InvalidCastException("a forming document without its packed bars");
            var read = 0;
            while (read < packed.Length)
            {
                yield return ReadForming(packed, ref read);
            }
        }
    }

    /// <summary>
    /// Appends one instrument's forming state to <paramref name="buffer"/> (grown when needed): the key's UTF-8 with a
    /// two-byte length, cumulative volume, volume day, a mask of the intervals that have a bar, then each such bar
    /// (start, end, open, high, low, close, volume, forming). Little-endian.
    /// </summary>
    public static void AppendForming(ref byte[] buffer, ref int length, string key, ReadOnlySpan<Bar> bars, long cumulativeVolume, int volumeDay)
    {
        var keyBytes = Encoding.UTF8.GetByteCount(key);
        var needed = length + 2 + keyBytes + 8 + 4 + 1 + (bars.Length * BarBytes);
        if (buffer.Length < needed)
        {
            Array.Resize(ref buffer, Math.Max(needed, buffer.Length * 2));
        }

        var span = buffer.AsSpan(length);
        BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)keyBytes);
        Encoding.UTF8.GetBytes(key, span[2..]);
        var w = 2 + keyBytes;
        BinaryPrimitives.WriteInt64LittleEndian(span[w..], cumulativeVolume);
        BinaryPrimitives.WriteInt32LittleEndian(span[(w + 8)..], volumeDay);
        var maskAt = w + 12;
        w += 13;
        byte mask = 0;
        for (var interval = 0; interval < bars.Length; interval++)
        {
            ref readonly var bar = ref bars[interval];
            if (!bar.Exists)
            {
                continue;
            }

            mask |= (byte)(1 << interval);
            var b = span[w..];
            BinaryPrimitives.WriteInt64LittleEndian(b, bar.StartUs);
            BinaryPrimitives.WriteInt64LittleEndian(b[8..], bar.EndUs);
            BinaryPrimitives.WriteDoubleLittleEndian(b[16..], bar.Open);
            BinaryPrimitives.WriteDoubleLittleEndian(b[24..], bar.High);
            BinaryPrimitives.WriteDoubleLittleEndian(b[32..], bar.Low);
            BinaryPrimitives.WriteDoubleLittleEndian(b[40..], bar.Close);
            BinaryPrimitives.WriteInt64LittleEndian(b[48..], bar.Volume);
            b[56] = bar.Forming ? (byte)1 : (byte)0;
            w += BarBytes;
        }

        span[maskAt] = mask;
        length += w;
    }

    private const int BarBytes = 57;

    private static (string Key, Bar[] Bars, long CumulativeVolume, int VolumeDay) ReadForming(byte[] packed, ref int read)
    {
        var span = packed.AsSpan(read);
        var keyBytes = BinaryPrimitives.ReadUInt16LittleEndian(span);
        var key = Encoding.UTF8.GetString(span.Slice(2, keyBytes));
        var r = 2 + keyBytes;
        var cumulative = BinaryPrimitives.ReadInt64LittleEndian(span[r..]);
        var day = BinaryPrimitives.ReadInt32LittleEndian(span[(r + 8)..]);
        var mask = span[r + 12];
        r += 13;
        var bars = new Bar[CandleIntervals.Count];
        for (var interval = 0; interval < 8; interval++)
        {
            if ((mask & (1 << interval)) == 0)
            {
                continue;
            }

            var b = span[r..];
            var bar = new Bar
            {
                StartUs = BinaryPrimitives.ReadInt64LittleEndian(b),
                EndUs = BinaryPrimitives.ReadInt64LittleEndian(b[8..]),
                Open = BinaryPrimitives.ReadDoubleLittleEndian(b[16..]),
                High = BinaryPrimitives.ReadDoubleLittleEndian(b[24..]),
                Low = BinaryPrimitives.ReadDoubleLittleEndian(b[32..]),
                Close = BinaryPrimitives.ReadDoubleLittleEndian(b[40..]),
                Volume = BinaryPrimitives.ReadInt64LittleEndian(b[48..]),
                Forming = b[56] != 0,
            };
            if (interval < bars.Length)
            {
                bars[interval] = bar;
            }

            r += BarBytes;
        }

        read += r;
        return (key, bars, cumulative, day);
    }

    /// <summary>
    /// Writes closed bars and whole chunks of forming state (<see cref="AppendForming"/>, by chunk index) in one
    /// transaction; forming chunks at or past <paramref name="formingChunks"/> are deleted (the instrument list shrank).
    /// Throws on failure (nothing is committed).
    /// </summary>
    public void Write(IReadOnlyList<(string Key, int Interval, Bar Bar)> closed, IReadOnlyList<(int Chunk, byte[] Packed)> forming, int formingChunks = -1)
    {
        _db.BeginTrans();
        try
        {
            foreach (var (key, interval, bar) in closed)
            {
                var doc = ToDocument(bar);
                doc["_id"] = Id(key, bar.StartUs);
                _db.GetCollection(Collection(interval)).Upsert(doc);
            }

            var documents = _db.GetCollection(FormingCollection);
            foreach (var (chunk, packed) in forming)
            {
                documents.Upsert(new BsonDocument { ["_id"] = chunk, ["p"] = packed });
            }

            if (formingChunks >= 0)
            {
                documents.DeleteMany(Query.GTE("_id", formingChunks));
            }

            _db.Commit();
        }
        catch
        {
            _db.Rollback();
            throw;
        }
    }

    /// <summary>The newest <paramref name="limit"/> closed bars of one instrument and interval starting in [from, to), oldest first.</summary>
    public List<Bar> Read(string key, int interval, long fromUs, long toUs, int limit)
    {
        var bars = new List<Bar>(Math.Min(limit, 1024));
        if (limit <= 0 || toUs <= fromUs)
        {
            return bars;
        }

        var query = _db.GetCollection(Collection(interval)).Query()
            .Where(Query.Between("_id", Id(key, fromUs), Id(key, toUs - 1)))
            .OrderByDescending("_id")
            .Limit(limit);
        foreach (var doc in query.ToEnumerable())
        {
            bars.Add(ToBar(doc));
        }

        bars.Reverse();
        return bars;
    }

    /// <summary>The start of the newest closed bar of <paramref name="interval"/>, any instrument; null when there is none.</summary>
    public long? NewestStart(int interval)
    {
        var collection = _db.GetCollection(Collection(interval));
        return collection.Count() == 0 ? null : collection.Max("t").AsInt64;
    }

    /// <summary>Deletes the closed bars of <paramref name="interval"/> that start before <paramref name="beforeUs"/>.</summary>
    public int Prune(int interval, long beforeUs) =>
        _db.GetCollection(Collection(interval)).DeleteMany(Query.LT("t", beforeUs));

    public void Dispose() => _db.Dispose();

    private static string Collection(int interval) => "bars_" + CandleIntervals.Names[interval];

    private static BsonValue Id(string key, long startUs)
    {
        var length = Encoding.UTF8.GetByteCount(key);
        var id = new byte[length + 9];
        Encoding.UTF8.GetBytes(key, id);
        // Offset by 2^63 so that byte order is number order for every long, negative or not.
        BinaryPrimitives.WriteUInt64BigEndian(id.AsSpan(length + 1), (ulong)startUs ^ 0x8000_0000_0000_0000UL);
        return new BsonValue(id);
    }

    private static BsonDocument ToDocument(in Bar bar) => new()
    {
        ["t"] = bar.StartUs,
        ["o"] = bar.Open,
        ["h"] = bar.High,
        ["l"] = bar.Low,
        ["c"] = bar.Close,
        ["v"] = bar.Volume,
    };

    private static Bar ToBar(BsonDocument doc) => new()
    {
        StartUs = doc["t"].AsInt64,
        Open = doc["o"].AsDouble,
        High = doc["h"].AsDouble,
        Low = doc["l"].AsDouble,
        Close = doc["c"].AsDouble,
        Volume = doc["v"].AsInt64,
    };
}
