namespace PriceDaemon.Candles;

/// <summary>One OHLCV bar of one instrument and interval: [<see cref="StartUs"/>, <see cref="EndUs"/>) in Unix microseconds UTC.</summary>
internal struct Bar
{
    public long StartUs;
    public long EndUs;
    public double Open;
    public double High;
    public double Low;
    public double Close;
    public long Volume;

    /// <summary>Still forming: a trade in [start, end) updates it. A bar with <see cref="StartUs"/> 0 is none.</summary>
    public bool Forming;

    public readonly bool Exists => StartUs != 0;

    public static Bar Start(long startUs, long endUs, double price, long volume) => new()
    {
        StartUs = startUs,
        EndUs = endUs,
        Open = price,
        High = price,
        Low = price,
        Close = price,
        Volume = volume,
        Forming = true,
    };

    public readonly bool SameAs(in Bar other) =>
        StartUs == other.StartUs && Forming == other.Forming && Close == other.Close && High == other.High && Low == other.Low
        && Volume == other.Volume && Open == other.Open;
}

/// <summary>A bar that closed, with whose it is: what the book hands the service to store and announce.</summary>
internal readonly record struct ClosedBar(int InstrumentId, int Interval, Bar Bar);
