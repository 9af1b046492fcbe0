using System.Numerics;
using PriceDaemon.Instruments;

namespace PriceDaemon.Pipeline;

/// <summary>
/// The newest emitted frame of each instrument. Written only by the throttle stage, read by any thread
/// (snapshots on subscribe, REST), so a plain array of references with volatile access is enough. The throttle's
/// frames are pooled: read them inside <see cref="Read"/>'s scope (see <see cref="PriceFrame"/>'s lifetime rule).
/// It also remembers which instruments changed since storage last took them: one bit per instrument, so
/// marking costs no lock and no allocation, and the storage writer reads the newest frame from here.
/// </summary>
public sealed class PriceCache
{
    private readonly PriceFrame?[] _latest;
    private readonly ulong[] _dirty;

    public PriceCache(InstrumentRegistry instruments)
    {
        _latest = new PriceFrame?[instruments.Count];
        _dirty = new ulong[(instruments.Count + 63) / 64];
        Epoch = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
    }

    /// <summary>
    /// Names this lineage of sequence numbers. It changes whenever the daemon lost its state, so a client
    /// that sees a new epoch knows a gap in <c>seq</c> is a restart, not a conflated update. Storage keeps it
    /// across clean restarts (<see cref="Restore"/>), so seq stays comparable.
    /// </summary>
    public string Epoch { get; private set; }

    /// <summary>Who reads frames now: the throttle's pool reuses a replaced frame only when none of them can hold it.</summary>
    public FrameEpochs Readers { get; } = new();

    /// <summary>
    /// Opens a read scope: frames got from <see cref="Get"/> inside it stay as they are until it is disposed.
    /// <c>using var scope = cache.Read();</c> around the reads, and copy out what must outlive it.
    /// </summary>
    public FrameReadScope Read() => Readers.Enter();

    /// <summary>
    /// The instrument's newest frame. Dereference it only inside a <see cref="Read"/> scope (or on the throttle's own
    /// thread, which is the only one that reuses frames); a null check needs none.
    /// </summary>
    public PriceFrame? Get(int instrumentId) => Volatile.Read(ref _latest[instrumentId]);

    /// <summary>
    /// The values of the instrument's newest frame, copied out in a read scope of its own: for readers that want a
    /// field or two (a feed's start, alerts, warm start) rather than the bytes.
    /// </summary>
    public bool TryGetValues(int instrumentId, out CachedPrice price)
    {
        using var scope = Read();
        if (Get(instrumentId) is { } frame)
        {
            price = new CachedPrice(frame.LastPrice, frame.Volume, frame.TimestampUs, frame.PreviousClose, frame.Seq);
            return true;
        }

        price = default;
        return false;
    }

    /// <summary>Throttle side: publishes <paramref name="frame"/> and returns the frame it replaced, for the pool to retire.</summary>
    internal PriceFrame? Set(PriceFrame frame)
    {
        ref var slot = ref _latest[frame.InstrumentId];
        var replaced = slot;
        Volatile.Write(ref slot, frame);
        MarkDirty(frame.InstrumentId);
        return replaced;
    }

    /// <summary>
    /// Full-fence set of the instrument's bit. The fence orders it after the frame write above, so a writer
    /// that clears the bit and then reads the frame always sees this frame or a newer one.
    /// </summary>
    internal void MarkDirty(int instrumentId) => Interlocked.Or(ref _dirty[instrumentId >> 6], 1UL << (instrumentId & 63));

    /// <summary>
    /// Storage side: clears every dirty bit and adds the newest frame of each marked instrument. Inside a read scope:
    /// the frames are pooled.
    /// </summary>
    internal void TakeDirty(List<PriceFrame> into)
    {
        for (var word = 0; word < _dirty.Length; word++)
        {
            if (Volatile.Read(ref _dirty[word]) == 0)
            {
                continue;
            }

            var bits = Interlocked.Exchange(ref _dirty[word], 0);
            while (bits != 0)
            {
                var id = (word << 6) + BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
                if (Get(id) is { } frame)
                {
                    into.Add(frame);
                }
            }
        }
    }

    /// <summary>Warm start: loads stored frames (not dirty: they are already on disk) before the pipeline runs.</summary>
    internal void Restore(string epoch, IEnumerable<PriceFrame> frames)
    {
        Epoch = epoch;
        foreach (var frame in frames)
        {
            Volatile.Write(ref _latest[frame.InstrumentId], frame);
        }
    }
}

/// <summary>The values of a cached price, copied out of its pooled frame (see <see cref="PriceCache.TryGetValues"/>).</summary>
public readonly record struct CachedPrice(double LastPrice, long Volume, long TimestampUs, double PreviousClose, long Seq);
