using System.Buffers.Binary;
using System.Text;
using LiteDB;

namespace PriceDaemon.Candles;

/// <summary>
/// The first layout of closed bars: one document per bar in <c>bars_1m</c>, <c>bars_5m</c>, ..., with a secondary index
/// on <c>t</c>. The id is the instrument key's UTF-8, a zero byte and the start as a big-endian number offset by 2^63,
/// so ids sort by instrument, then time. <see cref="CandleStore"/> reads it beside its blocks and prunes it, and never
/// writes it; <see cref="Write"/> is kept so that tests and benchmarks can make files of this shape.
/// </summary>
internal static class LegacyBars
{
    public static string Collection(int interval) => "bars_" + CandleIntervals.Names[interval];

    /// <summary>The instrument and bar of one document; throws <see cref="InvalidDataException"/> when it is not one.</summary>
    public static (string Key, Bar Bar) Read(BsonDocument doc)
    {
        var id = doc["_id"];
        if (!id.IsBinary || id.AsBinary.Length < 10 || id.AsBinary[^9] != 0)
        {
            throw new InvalidDataException($"bar document '{id}' is not an instrument key, a zero byte and a start");
        }

        // A missing field would read as 0, a bar at price 0; a string would throw a FormatException nothing handles.
        if (!doc["t"].IsNumber || !doc["o"].IsNumber || !doc["h"].IsNumber || !doc["l"].IsNumber || !doc["c"].IsNumber || !doc["v"].IsNumber)
        {
            throw new InvalidDataException($"bar document '{id}' lacks a number of t, o, h, l, c or v");
        }

        var bytes = id.AsBinary;
        var bar = new Bar
        {
            StartUs = doc["t"].AsInt64,
            Open = doc["o"].AsDouble,
            High = doc["h"].AsDouble,
            Low = doc["l"].AsDouble,
            Close = doc["c"].AsDouble,
            Volume = doc["v"].AsInt64,
        };
        if ((long)(BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(bytes.Length - 8)) ^ 0x8000_0000_0000_0000UL) != bar.StartUs)
        {
            throw new InvalidDataException($"bar document '{id}' has a start of {bar.StartUs} that is not its id's");
        }

        return (Encoding.UTF8.GetString(bytes, 0, bytes.Length - 9), bar);
    }

    /// <summary>A start read back (the newest <c>t</c>); throws <see cref="InvalidDataException"/> when it is not a number.</summary>
    public static long Start(BsonValue t) =>
        t.IsNumber ? t.AsInt64 : throw new InvalidDataException($"a bar of the first layout has a start of '{t}', not a number");

    /// <summary>What the first layout's open did: every interval's collection with its index on <c>t</c>.</summary>
    public static void Create(LiteDatabase db)
    {
        for (var interval = 0; interval < CandleIntervals.Count; interval++)
        {
            db.GetCollection(Collection(interval)).EnsureIndex("t");
        }
    }

    /// <summary>Writes closed bars as the first layout did (after <see cref="Create"/>): one upserted document each, in one transaction.</summary>
    public static void Write(LiteDatabase db, IReadOnlyList<(string Key, int Interval, Bar Bar)> closed)
    {
        db.BeginTrans();
        try
        {
            foreach (var (key, interval, bar) in closed)
            {
                db.GetCollection(Collection(interval)).Upsert(new BsonDocument
                {
                    ["_id"] = Id(key, bar.StartUs),
                    ["t"] = bar.StartUs,
                    ["o"] = bar.Open,
                    ["h"] = bar.High,
                    ["l"] = bar.Low,
                    ["c"] = bar.Close,
                    ["v"] = bar.Volume,
                });
            }

            db.Commit();
        }
        catch
        {
            db.Rollback();
            throw;
        }
    }

    /// <summary>The id of an instrument's bar: a range of them is a range of one instrument's bars.</summary>
    public static BsonValue Id(string key, long startUs)
    {
        var length = Encoding.UTF8.GetByteCount(key);
        var id = new byte[length + 9];
        Encoding.UTF8.GetBytes(key, id);
        BinaryPrimitives.WriteUInt64BigEndian(id.AsSpan(length + 1), (ulong)startUs ^ 0x8000_0000_0000_0000UL);
        return new BsonValue(id);
    }
}
