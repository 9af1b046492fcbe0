using System.Buffers.Binary;
using System.Text;
using LiteDB;
using PriceDaemon.Storage;

namespace PriceDaemon.Candles;

/// <summary>
/// The LiteDB file of bars. Closed bars are packed into blocks (<see cref="BarBlock"/>), one document per chunk of
/// <see cref="BlockInstruments"/> instruments and period of <see cref="BlockBars"/> bars, in one collection per interval
/// (<c>bar_blocks_1m</c>, ...); each instrument's newest bars with its volume baseline are packed into a few
/// <c>forming</c> documents of <see cref="FormingChunk"/> instruments each, so a restart resumes the forming bar. LiteDB
/// costs about 7 KB of allocation per document written and more per index entry, so one document per closed bar made a
/// minute's flush of 500 instruments 25–27 MB of garbage; it now writes one document per chunk, about 240 KB
/// (<c>CandleFlushBenchmarks</c>).
/// <para>
/// A block's <c>_id</c> is its chunk and period in one long (<see cref="Id"/>): an instrument's range is one walk of the
/// primary index over its chunk's blocks. <c>t</c>, the period's start, is indexed for pruning and the newest start.
/// An instrument's chunk and slot are kept in <c>bar_chunks</c>, one document per chunk (<c>_id</c> the chunk, <c>k</c> its
/// instruments' keys as UTF-8 in slot order: LiteDB compares strings ignoring case, and NSE_FO|abc and NSE_FO|ABC are two
/// instruments), assigned when an instrument's first bar is written and never moved (one document per chunk, not per
/// instrument: a first close of 500 instruments was 500 inserts and ~15 MB of garbage), so a restart or a changed instrument list keeps every block where it is. The newest block
/// of each chunk is kept in memory as the file holds it, so a flush appends to it without reading it back.
/// </para>
/// <para>
/// Files of the first layout (one document per bar in <c>bars_1m</c>, ..., see <see cref="LegacyBars"/>) are read in
/// place, not moved: a move cost about 60 µs a bar, minutes for a file at full retention, longer than a start may take
/// under systemd. New bars go to blocks only; a read merges both (the block's bar wins at the same start), pruning
/// prunes both, and an old collection is dropped once retention has emptied it.
/// </para>
/// <para>
/// Opening checks the header by hand, then reads what a flush will need (every place, each chunk's newest block of
/// each interval) and the forming state through a read-only connection, and refuses a file that does not read cleanly
/// (<see cref="StorageException"/>), leaving it as it was; otherwise one damaged block would fail every flush after the
/// start.
/// </para>
/// <para>Thread-safe: the service writes and prunes, sessions and REST read, the NATS backfill imports, one at a time.</para>
/// </summary>
internal sealed class CandleStore : IDisposable
{
    private const string FormingCollection = "forming";
    private const string ChunksCollection = "bar_chunks";
    private const string PackedField = "p";

    /// <summary>Instruments per block of closed bars (at most 256: a slot is a byte).</summary>
    public const int BlockInstruments = 64;

    /// <summary>
    /// Interval lengths per block: with <see cref="BlockInstruments"/>, a block is at most about 50 KB, and a history
    /// read of 1,000 1-minute bars reads 63 of its chunk's blocks.
    /// </summary>
    public const int BlockBars = 16;

    // A minute's flushes use about 32 lengths (a block growing through its period, of a full chunk and of the last);
    // a backfill writes blocks of every size, and arrays of more lengths than this are let go.
    private const int MaxExactLengths = 64;

    private LiteDatabase _db = null!;
    private readonly Lock _gate = new();
    private readonly ILiteCollection<BsonDocument>[] _blocks = new ILiteCollection<BsonDocument>[CandleIntervals.Count];
    private ILiteCollection<BsonDocument> _chunks = null!;
    private ILiteCollection<BsonDocument> _forming = null!;

    // Where each instrument's bars go, and the next free place: the last chunk fills before another starts.
    private readonly Dictionary<string, (int Chunk, int Slot)> _places = new(StringComparer.Ordinal);
    private int _lastChunk = -1;
    private int _lastChunkSlots = BlockInstruments;
    // Each chunk's keys in slot order, as bar_chunks holds them; chunks given a new instrument in this transaction.
    private readonly List<List<byte[]>> _chunkKeys = [];
    private readonly List<int> _chunksChanged = [];

    // Per interval, by chunk: its newest block as the file holds it (once read; a block with period long.MinValue
    // when the file holds none). Blocks changed in this transaction, written before it commits; an older one is read,
    // changed and written back whole, and not kept.
    private readonly List<BarBlock?>[] _newest = new List<BarBlock?>[CandleIntervals.Count];
    private readonly Dictionary<(int Interval, int Chunk, long Period), BarBlock> _changed = [];

    // A BSON binary value is its whole array: one array of each length written, reused (LiteDB copies it into its
    // pages during the upsert and keeps no reference), and one document refilled for every block.
    private readonly Dictionary<int, (byte[] Bytes, BsonValue Value)> _exact = [];
    private readonly BsonDocument _document = [];

    // Per interval: the first layout's collection still holds bars, read beside the blocks until retention empties it.
    private readonly bool[] _firstLayout = new bool[CandleIntervals.Count];

    // A failed transaction leaves the places and newest blocks unsure: they are read again before the next use.
    private bool _stale;

    private CandleStore(string path)
    {
        Path = path;
        for (var interval = 0; interval < CandleIntervals.Count; interval++)
        {
            _newest[interval] = [];
        }
    }

    public string Path { get; }

    /// <summary>
    /// Checks and opens the file at <paramref name="path"/>, creating folder and file if missing. Throws
    /// <see cref="StorageException"/> with a message for the operator when the file does not read cleanly; it is then
    /// left exactly as it was.
    /// </summary>
    public static CandleStore Open(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        var store = new CandleStore(full);
        if (File.Exists(full) && new FileInfo(full).Length > 0)
        {
            store.Check();
        }

        var db = new LiteDatabase(new ConnectionString { Filename = full, Connection = ConnectionType.Direct });
        try
        {
            store.Use(db);
            for (var interval = 0; interval < CandleIntervals.Count; interval++)
            {
                store._blocks[interval].EnsureIndex("t");
            }

            store.FindFirstLayout();
            return store;
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Checks the header by hand, then reads every place, each chunk's newest block of each interval (kept: the first
    /// flush appends to them) and the forming state through a read-only connection: LiteDB writes to a file it opens for
    /// writing (it re-initialised a 100-byte file of something else and truncated a 9,000-byte one to a page), so nothing
    /// does before the file has read cleanly.
    /// </summary>
    private void Check()
    {
        if (!PriceStore.HasLiteDbHeader(Path))
        {
            throw Unusable("it is not a LiteDB database");
        }

        try
        {
            using var db = new LiteDatabase(new ConnectionString { Filename = Path, Connection = ConnectionType.Direct, ReadOnly = true });
            Use(db);
            ReadPlaces();
            for (var interval = 0; interval < CandleIntervals.Count; interval++)
            {
                for (var chunk = 0; chunk <= _lastChunk; chunk++)
                {
                    _newest[interval].Add(ReadNewest(interval, chunk));
                }
            }

            foreach (var _ in LoadForming())
            {
                // Read to the end: a forming chunk that does not read would fail the service's start anyway.
            }
        }
        catch (Exception ex)
        {
            // Whatever LiteDB or the checks trip over in a damaged file, the answer is the same.
            throw Unusable($"it is damaged ({ex.Message})", ex);
        }
    }

    private StorageException Unusable(string reason, Exception? inner = null)
    {
        var message = $"Candles:Path: cannot use {Path}: {reason}. The file was left untouched; move it away to start without candle history, or point Candles:Path elsewhere";
        return inner is null ? new StorageException(message) : new StorageException(message, inner);
    }

    /// <summary>Reads and writes through <paramref name="db"/> from now on.</summary>
    private void Use(LiteDatabase db)
    {
        _db = db;
        for (var interval = 0; interval < CandleIntervals.Count; interval++)
        {
            _blocks[interval] = db.GetCollection(BlocksCollection(interval));
        }

        _chunks = db.GetCollection(ChunksCollection);
        _forming = db.GetCollection(FormingCollection);
    }

    /// <summary>Instruments per <c>forming</c> document: a flush rewrites whole chunks, a few documents, not one per instrument.</summary>
    public const int FormingChunk = 64;

    /// <summary>Each instrument's newest bars (forming or just closed) and volume baseline, as the last flush left them.</summary>
    public IEnumerable<(string Key, Bar[] Bars, long CumulativeVolume, int VolumeDay)> LoadForming()
    {
        // A collection the file never had cannot be read through a read-only connection.
        if (!_db.CollectionExists(FormingCollection))
        {
            yield break;
        }

        foreach (var doc in _forming.FindAll())
        {
            var packed = doc["p"].AsBinary ?? throw new InvalidDataException("a forming document without its packed bars");
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
        var keyBytes = span.Length < 2 ? 0 : BinaryPrimitives.ReadUInt16LittleEndian(span);
        var r = 2 + keyBytes;
        if (span.Length < r + 13 || span.Length < r + 13 + (System.Numerics.BitOperations.PopCount(span[r + 12]) * BarBytes))
        {
            // A damaged chunk says so in the type the service and start-up handle, not as a range error.
            throw new InvalidDataException($"a forming document's packed bars end inside an instrument (at byte {read} of {packed.Length})");
        }

        var key = Encoding.UTF8.GetString(span.Slice(2, keyBytes));
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
    /// A closed bar already stored (same instrument, interval and start) is replaced. Throws on failure (nothing is
    /// committed); the same call again is the retry.
    /// </summary>
    public void Write(IReadOnlyList<(string Key, int Interval, Bar Bar)> closed, IReadOnlyList<(int Chunk, byte[] Packed)> forming, int formingChunks = -1)
    {
        lock (_gate)
        {
            Refresh();
            _db.BeginTrans();
            try
            {
                // By index: a foreach over the interface would allocate its enumerator every flush.
                for (var i = 0; i < closed.Count; i++)
                {
                    var (key, interval, bar) = closed[i];
                    Put(key, interval, bar);
                }

                WriteChanged();
                WritePlaces();
                for (var i = 0; i < forming.Count; i++)
                {
                    var (chunk, packed) = forming[i];
                    _forming.Upsert(new BsonDocument { ["_id"] = chunk, [PackedField] = packed });
                }

                if (formingChunks >= 0)
                {
                    _forming.DeleteMany(Query.GTE("_id", formingChunks));
                }

                _db.Commit();
            }
            catch
            {
                Abandon();
                throw;
            }
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

        lock (_gate)
        {
            Refresh();
            if (_places.TryGetValue(key, out var place))
            {
                // Newest block first, each walked from its newest entry: the list comes out newest first.
                var query = _blocks[interval].Query()
                    .Where(Query.Between("_id", Id(place.Chunk, Period(interval, fromUs)), Id(place.Chunk, Period(interval, toUs - 1))))
                    .OrderByDescending("_id");
                foreach (var doc in query.ToEnumerable())
                {
                    var packed = Packed(doc);
                    for (var entry = BarBlock.CountOf(packed) - 1; entry >= 0; entry--)
                    {
                        var start = BarBlock.StartAt(packed, entry);
                        if (start < fromUs)
                        {
                            break;
                        }

                        if (start < toUs && BarBlock.SlotAt(packed, entry) == place.Slot)
                        {
                            bars.Add(BarBlock.BarAt(packed, entry));
                        }
                    }

                    if (bars.Count >= limit)
                    {
                        break;
                    }
                }
            }

            if (_firstLayout[interval])
            {
                bars = Merge(bars, ReadFirstLayout(key, interval, fromUs, toUs, limit), limit);
            }
        }

        if (bars.Count > limit)
        {
            bars.RemoveRange(limit, bars.Count - limit);
        }

        bars.Reverse();
        return bars;
    }

    /// <summary>The newest <paramref name="limit"/> bars of the first layout in [from, to), newest first: the query the first layout's read made.</summary>
    private List<Bar> ReadFirstLayout(string key, int interval, long fromUs, long toUs, int limit)
    {
        var bars = new List<Bar>();
        var query = _db.GetCollection(LegacyBars.Collection(interval)).Query()
            .Where(Query.Between("_id", LegacyBars.Id(key, fromUs), LegacyBars.Id(key, toUs - 1)))
            .OrderByDescending("_id")
            .Limit(limit);
        foreach (var doc in query.ToEnumerable())
        {
            bars.Add(LegacyBars.Read(doc).Bar);
        }

        return bars;
    }

    /// <summary>
    /// Two lists newest first into one, newest first, up to <paramref name="limit"/>: at the same start the block's bar
    /// is kept, since blocks hold what was written since the upgrade (a retried or backfilled bar).
    /// </summary>
    private static List<Bar> Merge(List<Bar> blocks, List<Bar> first, int limit)
    {
        if (first.Count == 0)
        {
            return blocks;
        }

        var merged = new List<Bar>(Math.Min(limit, blocks.Count + first.Count));
        var (b, f) = (0, 0);
        while (merged.Count < limit && (b < blocks.Count || f < first.Count))
        {
            if (f == first.Count || (b < blocks.Count && blocks[b].StartUs >= first[f].StartUs))
            {
                if (f < first.Count && blocks[b].StartUs == first[f].StartUs)
                {
                    f++;
                }

                merged.Add(blocks[b++]);
            }
            else
            {
                merged.Add(first[f++]);
            }
        }

        return merged;
    }

    /// <summary>The start of the newest closed bar of <paramref name="interval"/>, any instrument; null when there is none.</summary>
    public long? NewestStart(int interval)
    {
        lock (_gate)
        {
            long? newest = null;
            var collection = _blocks[interval];
            if (collection.Count() > 0)
            {
                // The newest bar is in a block of the newest period: blocks are never kept empty.
                foreach (var doc in collection.Find(Query.EQ("t", collection.Max("t"))))
                {
                    var packed = Packed(doc);
                    var start = BarBlock.StartAt(packed, BarBlock.CountOf(packed) - 1);
                    newest = newest is { } n && n > start ? n : start;
                }
            }

            if (_firstLayout[interval] && _db.GetCollection(LegacyBars.Collection(interval)) is var first && first.Query().Limit(1).Exists())
            {
                var start = LegacyBars.Start(first.Max("t"));
                newest = newest is { } n && n > start ? n : start;
            }

            return newest;
        }
    }

    /// <summary>
    /// Deletes the closed bars of <paramref name="interval"/> that start before <paramref name="beforeUs"/>, in blocks and
    /// in the first layout; returns how many.
    /// </summary>
    public int Prune(int interval, long beforeUs)
    {
        lock (_gate)
        {
            Refresh();
            int removed;
            _db.BeginTrans();
            try
            {
                removed = 0;
                foreach (var id in _blocks[interval].Find(Query.LT("t", beforeUs)).Select(static doc => BlockId(doc)).ToList())
                {
                    var (chunk, period) = ((int)(id >> 32), PeriodOf(id));
                    var fromBlock = Block(interval, chunk, period).RemoveBefore(beforeUs);
                    if (fromBlock == 0)
                    {
                        // A block whose period began before the cutoff but whose bars did not: unchanged, not rewritten
                        // (every prune would write it again until its whole period had passed).
                        _changed.Remove((interval, chunk, period));
                    }

                    removed += fromBlock;
                }

                WriteChanged(); // a block left empty is deleted
                if (_firstLayout[interval])
                {
                    removed += _db.GetCollection(LegacyBars.Collection(interval)).DeleteMany(Query.LT("t", beforeUs));
                }

                _db.Commit();
            }
            catch
            {
                Abandon();
                throw;
            }

            if (_firstLayout[interval])
            {
                DropFirstLayoutIfEmpty(interval);
            }

            return removed;
        }
    }

    public void Dispose()
    {
        // Not under a read in flight (a history read at shutdown).
        lock (_gate)
        {
            _db.Dispose();
        }
    }

    /// <summary>The period of a bar: its start's number of whole blocks of time since the epoch (clamped, so always an int).</summary>
    internal static long Period(int interval, long startUs) =>
        Math.Clamp(Math.DivRem(startUs, PeriodUs(interval), out var rest) - (rest < 0 ? 1 : 0), int.MinValue, int.MaxValue);

    private static long PeriodUs(int interval) => CandleIntervals.LengthUs[interval] * BlockBars;

    private static string BlocksCollection(int interval) => "bar_blocks_" + CandleIntervals.Names[interval];

    /// <summary>A block's id: the chunk in the high 32 bits, the period offset by 2^31 in the low, so ids sort by chunk, then time.</summary>
    private static long Id(int chunk, long period) => ((long)chunk << 32) | (uint)((int)period ^ int.MinValue);

    private static long PeriodOf(long id) => (int)((uint)id ^ 0x8000_0000u);

    private static long BlockId(BsonDocument doc) =>
        doc["_id"] is { IsInt64: true } id ? id.AsInt64 : throw new InvalidDataException($"block '{doc["_id"]}' has no chunk and period as its id");

    private static byte[] Packed(BsonDocument doc)
    {
        var packed = doc[PackedField];
        if (!packed.IsBinary)
        {
            throw new InvalidDataException($"block '{doc["_id"]}' has no packed bars");
        }

        BarBlock.Check(packed.AsBinary);
        return packed.AsBinary;
    }

    /// <summary>Puts one closed bar in its block, placing its instrument first if it is new to the file.</summary>
    private void Put(string key, int interval, in Bar bar)
    {
        if (!_places.TryGetValue(key, out var place))
        {
            if (_lastChunkSlots >= BlockInstruments)
            {
                _lastChunk++;
                _lastChunkSlots = 0;
            }

            place = (_lastChunk, _lastChunkSlots++);
            _places.Add(key, place);
            while (_chunkKeys.Count <= place.Chunk)
            {
                _chunkKeys.Add([]);
            }

            _chunkKeys[place.Chunk].Add(Encoding.UTF8.GetBytes(key));
            if (!_chunksChanged.Contains(place.Chunk))
            {
                _chunksChanged.Add(place.Chunk);
            }
        }

        Block(interval, place.Chunk, Period(interval, bar.StartUs)).Put(place.Slot, bar);
    }

    /// <summary>The block of a chunk and period to change in this transaction: the newest in memory, or an older one read back.</summary>
    private BarBlock Block(int interval, int chunk, long period)
    {
        var newestOfInterval = _newest[interval];
        while (newestOfInterval.Count <= chunk)
        {
            newestOfInterval.Add(null);
        }

        var newest = newestOfInterval[chunk] ??= ReadNewest(interval, chunk);
        var key = (interval, chunk, period);
        if (newest.Period < period)
        {
            // A new period: the newest block's array is reused unless it is still to be written in this transaction.
            if (_changed.ContainsKey((interval, chunk, newest.Period)))
            {
                newest = newestOfInterval[chunk] = new BarBlock(interval, chunk, period);
            }
            else
            {
                newest.Reset(interval, chunk, period);
            }
        }

        if (newest.Period == period)
        {
            _changed.TryAdd(key, newest);
            return newest;
        }

        if (!_changed.TryGetValue(key, out var older))
        {
            older = new BarBlock(interval, chunk, period);
            if (_blocks[interval].FindById(Id(chunk, period)) is { } doc)
            {
                older.Load(Packed(doc));
            }

            _changed.Add(key, older);
        }

        return older;
    }

    private BarBlock ReadNewest(int interval, int chunk)
    {
        if (!_db.CollectionExists(BlocksCollection(interval)))
        {
            return new BarBlock(interval, chunk, long.MinValue);
        }

        var doc = _blocks[interval].Query()
            .Where(Query.Between("_id", Id(chunk, int.MinValue), Id(chunk, int.MaxValue)))
            .OrderByDescending("_id")
            .Limit(1)
            .FirstOrDefault();
        if (doc is null)
        {
            return new BarBlock(interval, chunk, long.MinValue);
        }

        var block = new BarBlock(interval, chunk, PeriodOf(BlockId(doc)));
        block.Load(Packed(doc));
        return block;
    }

    /// <summary>Writes (or deletes, when emptied) every block changed in this transaction.</summary>
    private void WriteChanged()
    {
        foreach (var block in _changed.Values)
        {
            var collection = _blocks[block.Interval];
            var id = Id(block.Chunk, block.Period);
            if (block.Count == 0)
            {
                collection.Delete(id);
                continue;
            }

            if (!_exact.TryGetValue(block.Length, out var exact))
            {
                if (_exact.Count >= MaxExactLengths)
                {
                    _exact.Clear();
                }

                var bytes = new byte[block.Length];
                exact = (bytes, new BsonValue(bytes));
                _exact.Add(block.Length, exact);
            }

            block.Packed.CopyTo(exact.Bytes);
            _document["_id"] = id;
            _document["t"] = block.Period * PeriodUs(block.Interval);
            _document[PackedField] = exact.Value;
            collection.Upsert(_document);
        }

        _changed.Clear();
    }

    /// <summary>Rolls the transaction back; what memory holds of the file is read again before the next use.</summary>
    /// <summary>The places given in this transaction: each changed chunk's document, whole.</summary>
    private void WritePlaces()
    {
        foreach (var chunk in _chunksChanged)
        {
            var keys = new BsonArray();
            foreach (var key in _chunkKeys[chunk])
            {
                keys.Add(new BsonValue(key));
            }

            _chunks.Upsert(new BsonDocument { ["_id"] = chunk, ["k"] = keys });
        }

        _chunksChanged.Clear();
    }

    private void Abandon()
    {
        _changed.Clear();
        _chunksChanged.Clear();
        _stale = true;
        _db.Rollback();
    }

    private void Refresh()
    {
        if (_stale)
        {
            ReadPlaces();
            _stale = false;
        }
    }

    /// <summary>Reads every instrument's place; forgets the newest blocks, read again when next needed.</summary>
    private void ReadPlaces()
    {
        _places.Clear();
        foreach (var newest in _newest)
        {
            newest.Clear();
        }

        _chunkKeys.Clear();
        (_lastChunk, _lastChunkSlots) = (-1, BlockInstruments);
        if (!_db.CollectionExists(ChunksCollection))
        {
            return;
        }

        foreach (var doc in _chunks.FindAll())
        {
            var (id, keys) = (doc["_id"], doc["k"]);
            if (!id.IsInt32 || id.AsInt32 < 0 || !keys.IsArray || keys.AsArray.Count > BlockInstruments)
            {
                throw new InvalidDataException($"the places of chunk '{id}' are not a chunk number and at most {BlockInstruments} keys");
            }

            var chunk = id.AsInt32;
            while (_chunkKeys.Count <= chunk)
            {
                _chunkKeys.Add([]);
            }

            var slots = _chunkKeys[chunk];
            foreach (var key in keys.AsArray)
            {
                if (!key.IsBinary || !_places.TryAdd(Encoding.UTF8.GetString(key.AsBinary), (chunk, slots.Count)))
                {
                    throw new InvalidDataException($"the place of instrument '{key}' in chunk {chunk} is not a key, or a second place");
                }

                slots.Add(key.AsBinary);
            }

            if (chunk > _lastChunk)
            {
                (_lastChunk, _lastChunkSlots) = (chunk, slots.Count);
            }
        }
    }

    /// <summary>
    /// Notes which intervals still have bars of the first layout, whose open made all eight collections; empty ones are
    /// dropped. Nothing is read or moved: that would take as long as the file is big.
    /// </summary>
    private void FindFirstLayout()
    {
        for (var interval = 0; interval < CandleIntervals.Count; interval++)
        {
            if (_db.CollectionExists(LegacyBars.Collection(interval)))
            {
                _firstLayout[interval] = true;
                DropFirstLayoutIfEmpty(interval);
            }
        }
    }

    /// <summary>Drops a first-layout collection that retention has emptied; outside a transaction, where LiteDB drops collections.</summary>
    private void DropFirstLayoutIfEmpty(int interval)
    {
        if (!_db.GetCollection(LegacyBars.Collection(interval)).Query().Limit(1).Exists())
        {
            _db.DropCollection(LegacyBars.Collection(interval));
            _firstLayout[interval] = false;
        }
    }
}
