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
/// Prices are stored in <see cref="ChunkCount"/> documents, each holding every instrument whose key hashes
/// to it, rather than one document per instrument: LiteDB spends about 50 µs and 20 KB per upserted
/// document, so a flush of 2,000 changed prices costs 64 upserts instead of 2,000. The store keeps what is
/// on disk in memory to rewrite a chunk whole. Files written before this layout (one document per
/// instrument in <c>prices</c>) are read, then moved to chunks by the first write.
/// </para>
/// </summary>
internal sealed class PriceStore : IDisposable
{
    private const string LegacyPricesCollection = "prices";
    private const string ChunksCollection = "price_chunks";
    private const string MetaCollection = "meta";
    private const string StateId = "state";
    private const int ChunkCount = 64;

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
    private readonly Dictionary<string, StoredPrice>[] _chunks = new Dictionary<string, StoredPrice>[ChunkCount];
    private readonly bool[] _touched = new bool[ChunkCount];
    private bool _legacyRows;
    private LiteDatabase? _db;

    private PriceStore(string path, FileStream lockFile, StoredState state, bool legacyRows)
    {
        _path = path;
        _lock = lockFile;
        for (var i = 0; i < ChunkCount; i++)
        {
            _chunks[i] = [];
        }

        foreach (var price in state.Prices)
        {
            _chunks[ChunkOf(price.Key)][price.Key] = price;
        }

        _legacyRows = legacyRows;
    }

    /// <summary>Full path of the data file.</summary>
    public string Path => _path;

    /// <summary>
    /// Locks, checks and reads the file at <paramref name="path"/>, creating folder and file if missing.
    /// Throws <see cref="StorageException"/> with a message for the operator when the file cannot be used;
    /// the file is then left exactly as it was.
    /// </summary>
    public static (PriceStore Store, StoredState State) Open(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        var lockFile = TakeLock(full);
        try
        {
            var (state, legacyRows) = File.Exists(full) && new FileInfo(full).Length > 0 ? Read(full) : (new StoredState(null, false, []), false);
            var store = new PriceStore(full, lockFile, state, legacyRows);
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
    /// Stores <paramref name="prices"/> (replacing each instrument's earlier one) in one transaction: every
    /// chunk they touch is rewritten. On any failure the connection is dropped (LiteDB refuses further writes
    /// after an I/O error) and the next call opens it again; calling again with the same prices is the retry.
    /// </summary>
    public void Write(IReadOnlyList<StoredPrice> prices)
    {
        foreach (var price in prices)
        {
            var chunk = ChunkOf(price.Key);
            _chunks[chunk][price.Key] = price;
            _touched[chunk] = true;
        }

        if (_legacyRows)
        {
            // The first write to a file of the old layout moves everything, then drops the old rows.
            Array.Fill(_touched, true);
        }

        var db = _db ?? OpenWritable();
        try
        {
            var collection = db.GetCollection(ChunksCollection);
            db.BeginTrans();
            for (var chunk = 0; chunk < ChunkCount; chunk++)
            {
                if (_touched[chunk] && _chunks[chunk].Count > 0)
                {
                    var entries = new BsonArray();
                    foreach (var price in _chunks[chunk].Values)
                    {
                        entries.Add(ToDocument(price));
                    }

                    collection.Upsert(new BsonDocument { ["_id"] = chunk, ["prices"] = entries });
                }
            }

            if (_legacyRows)
            {
                db.GetCollection(LegacyPricesCollection).DeleteAll();
            }

            db.Commit();
            Array.Clear(_touched);
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

    private static (StoredState State, bool LegacyRows) Read(string full)
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
            foreach (var chunk in chunks)
            {
                var id = chunk["_id"];
                if (!id.IsInt32 || id.AsInt32 is < 0 or >= ChunkCount)
                {
                    throw new InvalidDataException($"price chunk '{id}' is not one of 0..{ChunkCount - 1}");
                }

                foreach (var entry in chunk["prices"].AsArray)
                {
                    var price = FromDocument(entry.AsDocument, "key");
                    if (ChunkOf(price.Key) != id.AsInt32 || !prices.TryAdd(price.Key, price))
                    {
                        throw new InvalidDataException($"price '{price.Key}' is in the wrong chunk or stored twice");
                    }
                }
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
            return (state, legacyRows);
        }
        catch (Exception ex)
        {
            // Whatever LiteDB trips over in a damaged file (its own exceptions, casts, ranges), the answer is the same.
            throw Unusable(full, $"it is damaged ({ex.Message})");
        }
    }

    private static bool HasLiteDbHeader(string full)
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

    /// <summary>A stable chunk for a key (FNV-1a): the same instrument lands in the same document in every run.</summary>
    private static int ChunkOf(string key)
    {
        var hash = 2166136261u;
        foreach (var c in key)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return (int)(hash % ChunkCount);
    }

    // A chunk's entries name their instrument in "key"; old-layout rows used it as the document "_id".
    private static BsonDocument ToDocument(StoredPrice price) => new()
    {
        ["key"] = price.Key,
        ["last_price"] = price.LastPrice,
        ["volume"] = price.Volume,
        ["timestamp_us"] = price.TimestampUs,
        ["change_percent"] = price.ChangePercent,
        ["previous_close"] = price.PreviousClose,
        ["seq"] = price.Seq,
        ["source"] = price.Source,
    };

    private static StoredPrice FromDocument(BsonDocument doc, string keyField)
    {
        var price = new StoredPrice(
            doc[keyField]?.AsString!,
            doc["last_price"].AsDouble,
            doc["volume"].AsInt64,
            doc["timestamp_us"].AsInt64,
            doc["change_percent"].AsDouble,
            doc["previous_close"].AsDouble,
            doc["seq"].AsInt64,
            doc["source"].AsString);
        if (string.IsNullOrEmpty(price.Key) || !double.IsFinite(price.LastPrice) || price.LastPrice <= 0 || price.Seq < 0
            || !double.IsFinite(price.PreviousClose) || price.Source is null)
        {
            throw new InvalidDataException($"price '{doc[keyField]}' has missing or invalid fields");
        }

        return price;
    }

    private LiteDatabase OpenWritable()
    {
        // Direct: this process is the only user (the lock file says so), so LiteDB needs no shared-mode mutex.
        _db = new LiteDatabase(new ConnectionString { Filename = _path, Connection = ConnectionType.Direct });
        return _db;
    }

    private void CloseDatabase()
    {
        var db = _db;
        _db = null;
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
