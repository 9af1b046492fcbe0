using LiteDB;

namespace PriceDaemon.Storage;

/// <summary>One instrument's last known price as it is stored.</summary>
/// <param name="Source">The source name of the frame (<c>live</c>, <c>simulated</c>, ...), kept for operators reading the file.</param>
internal readonly record struct StoredPrice(
    string Key,
    double LastPrice,
    long Volume,
    long TimestampUs,
    double ChangePercent,
    double PreviousClose,
    long Seq,
    string Source);

/// <summary>What the file held at start-up.</summary>
/// <param name="Epoch">The seq lineage of the last run; null for a new file.</param>
/// <param name="CleanShutdown">The last run flushed everything and marked it so (SIGTERM), rather than dying.</param>
internal sealed record StoredState(string? Epoch, bool CleanShutdown, IReadOnlyList<StoredPrice> Prices);

/// <summary>
/// The LiteDB file of last known prices, and the only code that touches LiteDB. Opening it is careful not to
/// change a file it does not understand: the header is checked by hand and everything is read through a
/// read-only connection first; only a file that read cleanly is opened for writing. A lock file held for the
/// store's life keeps a second daemon off the file, because LiteDB's direct mode does not (on Linux its
/// writers share the file). Not thread-safe: the storage service is its only user.
/// <para>
/// Every price is packed into a few binary blocks (<see cref="PackedPrices"/>; one block holds about 13,000
/// prices), each the <c>packed</c> field of one document in <c>price_chunks</c> with <c>_id</c> 0, 1, ...,
/// and every flush rewrites them all. LiteDB allocates about 7 KB per document it updates, whatever its size,
/// plus about 1.3 KB per 8 KiB page the document spans, and far more for a document of many small values; so
/// the fewer and more compact the documents, the less a flush allocates, and with every instrument ticking,
/// a flush rewrites the same pages either way. The arrays and documents are kept from flush to flush, so
/// the store itself allocates nothing in a steady state: a flush of 2,000 prices allocates about 30 KB,
/// all of it LiteDB's (3.7 MB as chunks of documents). The store keeps what is on disk in memory.
/// </para>
/// <para>
/// Older layouts are read, and moved by the first write, in its transaction: one document per instrument
/// in <c>prices</c>, and <see cref="ChunkCount"/> chunks holding an array of price documents (<c>prices</c>)
/// for every instrument whose key hashes to the chunk.
/// </para>
/// </summary>
internal sealed class PriceStore : IDisposable
{
    private const string LegacyPricesCollection = "prices";
    private const string ChunksCollection = "price_chunks";
    private const string MetaCollection = "meta";
    private const string StateId = "state";
    private const string PackedField = "packed";
    private const string DocumentsField = "prices";
    private const int ChunkCount = 64;

    // A block stops growing at about this size: well inside LiteDB's 16 MiB document limit.
    private const int MaxBlockBytes = 1024 * 1024;

    // A sanity bound on block ids read back: 65,536 blocks would be billions of prices.
    private const int MaxDocuments = 65_536;

    // LiteDB 5 files begin with an 8 KiB header page: this text at byte 32, then file version 8 at byte 59.
    private const int HeaderInfoOffset = 32;
    private const int FileVersionOffset = 59;
    private const byte FileVersion = 8;
    private const int PageSize = 8192;
    // How .NET reports a lock held elsewhere: ERROR_SHARING_VIOLATION on Windows, errno EWOULDBLOCK (11) on Linux.
    private const int SharingViolation = unchecked((int)0x80070020);
    private const int WouldBlock = 11;

    private static ReadOnlySpan<byte> HeaderInfo => "** This is a LiteDB file **"u8;

    private readonly string _path;
    private readonly FileStream _lock;
    private readonly Dictionary<string, StoredPrice> _prices = [];

    // The blocks, and per block the document that carries it: the arrays are rewritten in place while their
    // sizes stay the same, and LiteDB serializes a document during the upsert and keeps no reference to it.
    private readonly PackedPrices _blocks;
    private readonly List<BsonDocument> _documents = [];
    private int _storedDocuments; // price_chunks documents have _id 0 up to this, or fewer
    private bool _legacyRows;
    private LiteDatabase? _db;
    private ILiteCollection<BsonDocument>? _chunkCollection;

    private PriceStore(string path, FileStream lockFile, StoredState state, Layout layout, int maxBlockBytes)
    {
        _path = path;
        _lock = lockFile;
        foreach (var price in state.Prices)
        {
            _prices[price.Key] = price;
        }

        _blocks = new PackedPrices(maxBlockBytes);
        _legacyRows = layout.LegacyRows;
        _storedDocuments = layout.ChunkDocuments;
    }

    /// <summary>Full path of the data file.</summary>
    public string Path => _path;

    /// <summary>
    /// Locks, checks and reads the file at <paramref name="path"/>, creating folder and file if missing.
    /// Throws <see cref="StorageException"/> with a message for the operator when the file cannot be used;
    /// the file is then left exactly as it was.
    /// </summary>
    public static (PriceStore Store, StoredState State) Open(string path) => Open(path, MaxBlockBytes);

    /// <summary><see cref="Open(string)"/> with blocks of at most <paramref name="maxBlockBytes"/>: tests use small ones.</summary>
    internal static (PriceStore Store, StoredState State) Open(string path, int maxBlockBytes)
    {
        var full = System.IO.Path.GetFullPath(path);
        var lockFile = TakeLock(full);
        try
        {
            var (state, layout) = File.Exists(full) && new FileInfo(full).Length > 0 ? Read(full) : (new StoredState(null, false, []), default);
            var store = new PriceStore(full, lockFile, state, layout, maxBlockBytes);
            try
            {
                store.OpenWritable();
            }
            catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException)
            {
                throw new StorageException($"Storage:Path: cannot open {full} for writing: {ex.Message}", ex);
            }

            return (store, state);
        }
        catch
        {
            lockFile.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Stores <paramref name="prices"/> (replacing each instrument's earlier one) in one transaction that
    /// rewrites every block. On any failure the connection is dropped (LiteDB refuses further writes after an
    /// I/O error) and the next call opens it again; calling again with the same prices is the retry.
    /// </summary>
    public void Write(IReadOnlyList<StoredPrice> prices)
    {
        foreach (var price in prices)
        {
            _prices[price.Key] = price;
        }

        var db = _db ?? OpenWritable();
        try
        {
            var collection = _chunkCollection!;
            _blocks.Pack(_prices);
            db.BeginTrans();
            for (var block = 0; block < _blocks.Count; block++)
            {
                collection.Upsert(Document(block));
            }

            if (_storedDocuments > _blocks.Count)
            {
                // Fewer blocks than documents: chunks of the older layout, or blocks of a larger universe.
                collection.DeleteMany(Query.GTE("_id", _blocks.Count));
            }

            if (_legacyRows)
            {
                // The first write to a file of the oldest layout moved everything; its rows go.
                db.GetCollection(LegacyPricesCollection).DeleteAll();
            }

            db.Commit();
            _documents.RemoveRange(_blocks.Count, Math.Max(0, _documents.Count - _blocks.Count));
            _storedDocuments = _blocks.Count;
            _legacyRows = false;
        }
        catch
        {
            CloseDatabase();
            throw;
        }
    }

    /// <summary>Records the epoch, and whether everything up to now is on disk (set only after the final flush).</summary>
    public void WriteState(string epoch, bool cleanShutdown)
    {
        var db = _db ?? OpenWritable();
        try
        {
            db.GetCollection(MetaCollection).Upsert(new BsonDocument
            {
                ["_id"] = StateId,
                ["epoch"] = epoch,
                ["clean_shutdown"] = cleanShutdown,
            });
        }
        catch
        {
            CloseDatabase();
            throw;
        }
    }

    public void Dispose()
    {
        CloseDatabase();
        _lock.Dispose();
    }

    private static FileStream TakeLock(string full)
    {
        var lockPath = full + ".lock";
        try
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
            // FileShare.None is an exclusive flock on Linux: held until this process closes it or dies, so a
            // kill -9 never leaves a stale lock behind. The file itself stays; deleting it would race.
            return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex) when (ex.HResult is SharingViolation or WouldBlock)
        {
            throw new StorageException($"Storage:Path: {full} is in use by another PriceDaemon (it holds {lockPath}); run one daemon per data file", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new StorageException($"Storage:Path: cannot create {lockPath}: {ex.Message}", ex);
        }
    }

    /// <summary>The document of a block, made again only when the block's array was replaced.</summary>
    private BsonDocument Document(int block)
    {
        var packed = _blocks[block];
        if (block == _documents.Count)
        {
            _documents.Add(new BsonDocument { ["_id"] = block, [PackedField] = packed });
        }
        else if (!ReferenceEquals(_documents[block][PackedField].RawValue, packed))
        {
            _documents[block][PackedField] = packed;
        }

        return _documents[block];
    }

    private static (StoredState State, Layout Layout) Read(string full)
    {
        if (!HasLiteDbHeader(full))
        {
            throw Unusable(full, "it is not a LiteDB database");
        }

        try
        {
            // Read-only: LiteDB writes to a file it opens for writing (it even re-initialises one it thinks is
            // new), so nothing gets write access before the whole file has been read back cleanly.
            using var db = new LiteDatabase(new ConnectionString { Filename = full, Connection = ConnectionType.Direct, ReadOnly = true });
            var meta = db.GetCollection(MetaCollection).FindById(StateId);
            // A collection the file never had cannot be read through a read-only connection.
            var legacy = db.CollectionExists(LegacyPricesCollection) ? db.GetCollection(LegacyPricesCollection).FindAll() : [];
            var chunks = db.CollectionExists(ChunksCollection) ? db.GetCollection(ChunksCollection).FindAll() : [];
            var prices = new Dictionary<string, StoredPrice>();
            var documents = 0;
            foreach (var chunk in chunks)
            {
                var id = chunk["_id"];
                foreach (var price in ReadChunk(chunk))
                {
                    if (!prices.TryAdd(price.Key, price))
                    {
                        throw new InvalidDataException($"price '{price.Key}' is stored twice");
                    }
                }

                documents = Math.Max(documents, id.AsInt32 + 1);
            }

            // Rows of the old layout exist beside chunks only if an older version ran on the file after it was
            // moved (the move itself is one transaction); what that version wrote is the newer price.
            var legacyRows = false;
            foreach (var doc in legacy)
            {
                var price = FromDocument(doc, "_id");
                prices[price.Key] = price;
                legacyRows = true;
            }

            var state = new StoredState(
                meta is null ? null : meta["epoch"].AsString,
                meta is not null && meta["clean_shutdown"].AsBoolean,
                [.. prices.Values]);
            return (state, new Layout(legacyRows, documents));
        }
        catch (Exception ex)
        {
            // Whatever LiteDB trips over in a damaged file (its own exceptions, casts, ranges), the answer is the same.
            throw Unusable(full, $"it is damaged ({ex.Message})");
        }
    }

    /// <summary>
    /// The prices of one document of <c>price_chunks</c>: a block (<c>_id</c> 0 and up), or a chunk of the
    /// first chunked layout (<c>_id</c> 0..63, an array of price documents whose keys hash to it).
    /// </summary>
    private static IEnumerable<StoredPrice> ReadChunk(BsonDocument chunk)
    {
        var id = chunk["_id"];
        if (chunk[PackedField] is { IsBinary: true } packed && id.IsInt32 && id.AsInt32 is >= 0 and < MaxDocuments)
        {
            return PackedPrices.Read(packed.AsBinary).Select(Checked);
        }

        if (chunk[DocumentsField] is not { IsArray: true } documents || !id.IsInt32 || id.AsInt32 is < 0 or >= ChunkCount)
        {
            throw new InvalidDataException($"price chunk '{id}' is neither a block of packed prices nor one of chunks 0..{ChunkCount - 1}");
        }

        return documents.AsArray.Select(entry =>
        {
            var price = FromDocument(entry.AsDocument, "key");
            return ChunkOf(price.Key) == id.AsInt32 ? price : throw new InvalidDataException($"price '{price.Key}' is in the wrong chunk");
        });
    }

    /// <summary>Whether the file begins with a LiteDB 5 header page; checked before LiteDB may open it (the candle file's too).</summary>
    internal static bool HasLiteDbHeader(string full)
    {
        Span<byte> header = stackalloc byte[FileVersionOffset + 1];
        using var file = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return file.Length >= PageSize
            && file.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) == header.Length
            && header.Slice(HeaderInfoOffset, HeaderInfo.Length).SequenceEqual(HeaderInfo)
            && header[FileVersionOffset] == FileVersion;
    }

    private static StorageException Unusable(string full, string reason) => new(
        $"Storage:Path: cannot use {full}: {reason}. The file was left untouched; move it away to start with empty storage, or point Storage:Path elsewhere");

    /// <summary>The chunk of a key in the first chunked layout (FNV-1a), where reading checks it.</summary>
    internal static int ChunkOf(string key)
    {
        var hash = 2166136261u;
        foreach (var c in key)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return (int)(hash % ChunkCount);
    }

    // Entries of the first chunked layout name their instrument in "key"; old-layout rows used it as the document "_id".
    private static StoredPrice FromDocument(BsonDocument doc, string keyField) => Checked(new StoredPrice(
        doc[keyField]?.AsString!,
        doc["last_price"].AsDouble,
        doc["volume"].AsInt64,
        doc["timestamp_us"].AsInt64,
        doc["change_percent"].AsDouble,
        doc["previous_close"].AsDouble,
        doc["seq"].AsInt64,
        doc["source"].AsString));

    private static StoredPrice Checked(StoredPrice price)
    {
        if (string.IsNullOrEmpty(price.Key) || !double.IsFinite(price.LastPrice) || price.LastPrice <= 0 || price.Seq < 0
            || !double.IsFinite(price.PreviousClose) || price.Source is null)
        {
            throw new InvalidDataException($"price '{price.Key}' has missing or invalid fields");
        }

        return price;
    }

    /// <summary>What of older layouts the file holds, which the first write moves.</summary>
    /// <param name="LegacyRows">Rows of one document per instrument in <c>prices</c>.</param>
    /// <param name="ChunkDocuments">One more than the highest <c>_id</c> in <c>price_chunks</c> (blocks, or chunks of the first chunked layout).</param>
    private readonly record struct Layout(bool LegacyRows, int ChunkDocuments);

    private LiteDatabase OpenWritable()
    {
        // Direct: this process is the only user (the lock file says so), so LiteDB needs no shared-mode mutex.
        _db = new LiteDatabase(new ConnectionString { Filename = _path, Connection = ConnectionType.Direct });
        _chunkCollection = _db.GetCollection(ChunksCollection);
        return _db;
    }

    private void CloseDatabase()
    {
        var db = _db;
        _db = null;
        _chunkCollection = null;
        try
        {
            db?.Dispose();
        }
        catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException)
        {
            // Closing after a failed write can fail the same way; the file is still consistent (LiteDB's log
            // only counts committed transactions) and the next write opens it again.
        }
    }
}
