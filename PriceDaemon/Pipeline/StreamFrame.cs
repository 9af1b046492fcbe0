namespace PriceDaemon.Pipeline;

/// <summary>
/// One version of a last-value stream, serialized once: what a send pass needs to conflate it per socket (its
/// <see cref="Seq"/>) and to write it (its <see cref="Utf8"/> bytes). A price is one; a topic's value is another,
/// and the depth, book and candle channels will be too. Non-virtual members: a pass reads them as plain fields.
/// Immutable once published, except a pooled <see cref="PriceFrame"/>, which its pool refills after a grace period
/// (see its lifetime rule).
/// </summary>
public abstract class StreamFrame
{
    // The bytes are the first Utf8Length of the buffer: a pooled frame keeps one buffer for every price it holds.
    private protected byte[] _utf8;
    private protected int _utf8Length;

    protected StreamFrame(long seq, long receivedTimestamp, byte[] utf8)
    {
        Seq = seq;
        ReceivedTimestamp = receivedTimestamp;
        _utf8 = utf8;
        _utf8Length = utf8.Length;
    }

    /// <summary>Per-key version that only grows: a socket never gets a lower one after a higher one.</summary>
    public long Seq { get; private protected set; }

    /// <summary>When the daemon received what this version holds (<see cref="TimeProvider.GetTimestamp"/>); 0 when not measured.</summary>
    public long ReceivedTimestamp { get; private protected set; }

    /// <summary>The complete text frame.</summary>
    public ReadOnlyMemory<byte> Utf8 => new(_utf8, 0, _utf8Length);
}

/// <summary>
/// Where a subscription's newest frame is read from, by the subscription's key: a topic cache now, the depth, book
/// and candle caches later. Prices have none: a subscription without a source reads the <see cref="PriceCache"/>
/// directly, so the price path makes no interface call.
/// </summary>
public interface IFrameSource
{
    /// <summary>The newest frame of <paramref name="key"/>, or null when it has none yet.</summary>
    StreamFrame? Latest(int key);
}
