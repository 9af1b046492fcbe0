using PriceDaemon.Instruments;

namespace PriceDaemon.Pipeline;

/// <summary>
/// The newest emitted frame of each instrument. Written only by the throttle stage, read by any thread
/// (snapshots on subscribe, REST), so a plain array of references with volatile access is enough.
/// </summary>
public sealed class PriceCache
{
    private readonly PriceFrame?[] _latest;

    public PriceCache(InstrumentRegistry instruments)
    {
        _latest = new PriceFrame?[instruments.Count];
        Epoch = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
    }

    /// <summary>
    /// Names this lineage of sequence numbers. It changes whenever the daemon lost its state, so a client
    /// that sees a new epoch knows a gap in <c>seq</c> is a restart, not a conflated update.
    /// </summary>
    public string Epoch { get; }

    public PriceFrame? Get(int instrumentId) => Volatile.Read(ref _latest[instrumentId]);

    internal void Set(PriceFrame frame) => Volatile.Write(ref _latest[frame.InstrumentId], frame);
}
