using System.Numerics;
using PriceDaemon.Instruments;

namespace PriceDaemon.Pipeline;

/// <summary>
/// The newest emitted frame of each instrument. Written only by the throttle stage, read by any thread
/// (snapshots on subscribe, REST), so a plain array of references with volatile access is enough.
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

    public PriceFrame? Get(int instrumentId) => Volatile.Read(ref _latest[instrumentId]);

    internal void Set(PriceFrame frame)
    {
        Volatile.Write(ref _latest[frame.InstrumentId], frame);
        MarkDirty(frame.InstrumentId);
    }

    /// <summary>
    /// Full-fence set of the instrument's bit. The fence orders it after the frame write above, so a writer
    /// that clears the bit and then reads the frame always sees this frame or a newer one.
    /// </summary>
    internal void MarkDirty(int instrumentId) => Interlocked.Or(ref _dirty[instrumentId >> 6], 1UL << (instrumentId & 63));

    /// <summary>Storage side: clears every dirty bit and adds the newest frame of each marked instrument.</summary>
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
