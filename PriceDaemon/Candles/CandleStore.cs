using System.Buffers.Binary;
using System.Text;
using LiteDB;

namespace PriceDaemon.Candles;

/// <summary>
/// The LiteDB file of bars: closed bars in one collection per interval (<c>bars_1m</c>, ...), one document per bar,
/// and each instrument's newest bars with its volume baseline in <c>forming</c>, so a restart resumes the forming bar.
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

    /// <summary>Each instrument's newest bars (forming or just closed) and volume baseline, as the last flush left them.</summary>
    public IEnumerable<(string Key, Bar[] Bars, long CumulativeVolume, int VolumeDay)> LoadForming()
    {
        foreach (var doc in _db.GetCollection(FormingCollection).FindAll())
        {
            var bars = new Bar[CandleIntervals.Count];
            foreach (var item in doc["b"].AsArray)
            {
                var interval = item["i"].AsInt32;
                if ((uint)interval < CandleIntervals.Count)
                {
                    bars[interval] = ToBar(item.AsDocument);
                    bars[interval].EndUs = item["e"].AsInt64;
                    bars[interval].Forming = item["f"].AsBoolean;
                }
            }

            yield return (doc["_id"].AsString, bars, doc["cv"].AsInt64, doc["d"].AsInt32);
        }
    }

    /// <summary>Writes closed bars and instruments' newest bars in one transaction; throws on failure (nothing is committed).</summary>
    public void Write(IReadOnlyList<(string Key, int Interval, Bar Bar)> closed, IReadOnlyList<(string Key, Bar[] Bars, long CumulativeVolume, int VolumeDay)> newest)
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

            var forming = _db.GetCollection(FormingCollection);
            foreach (var (key, bars, cumulative, day) in newest)
            {
                var array = new BsonArray();
                for (var interval = 0; interval < bars.Length; interval++)
                {
                    if (bars[interval].Exists)
                    {
                        var item = ToDocument(bars[interval]);
                        item["i"] = interval;
                        item["e"] = bars[interval].EndUs;
                        item["f"] = bars[interval].Forming;
                        array.Add(item);
                    }
                }

                forming.Upsert(new BsonDocument { ["_id"] = key, ["cv"] = cumulative, ["d"] = day, ["b"] = array });
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
