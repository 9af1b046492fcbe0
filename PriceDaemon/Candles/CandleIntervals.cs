namespace PriceDaemon.Candles;

/// <summary>The five bar intervals, by index: the index is part of a bar's key everywhere (book, store, sockets).</summary>
internal static class CandleIntervals
{
    public const int Count = 5;
    public const int Day = 4;
    public const long MinuteUs = 60_000_000;
    public const long DayUs = 24 * 60 * MinuteUs;

    public static readonly string[] Names = ["1m", "5m", "15m", "1h", "1d"];

    /// <summary>Length of each intraday interval; the day bar's length is the session's.</summary>
    public static readonly long[] LengthUs = [MinuteUs, 5 * MinuteUs, 15 * MinuteUs, 60 * MinuteUs, DayUs];

    public static string List => string.Join(", ", Names);

    public static bool TryParse(string? name, out int index)
    {
        index = Array.IndexOf(Names, name);
        return index >= 0;
    }
}
