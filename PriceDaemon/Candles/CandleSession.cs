namespace PriceDaemon.Candles;

/// <summary>
/// Where a trade's bars begin and end: intraday intervals on a grid anchored at the session open (09:15, 09:20, ...,
/// and for the hour 09:15, 10:15, ..., 15:15-15:30), the day bar over the trading day, in the exchange's local time.
/// Pure arithmetic on Unix microseconds: no allocation, no time zone lookups on the tick path.
/// </summary>
internal sealed class CandleSession
{
    private readonly long _offsetUs;
    private readonly long _openUs;
    private readonly long _closeUs;
    private readonly bool _outside;

    public CandleSession(CandleOptions options, bool includeOutsideSession)
    {
        CandleOptions.TryParseTimeOfDay(options.SessionOpen, out var open);
        CandleOptions.TryParseTimeOfDay(options.SessionClose, out var close);
        _offsetUs = options.UtcOffsetMinutes * CandleIntervals.MinuteUs;
        _openUs = (long)open.TotalMicroseconds;
        _closeUs = (long)close.TotalMicroseconds;
        _outside = includeOutsideSession;
    }

    public bool IncludesOutsideSession => _outside;

    /// <summary>The trading day (days since 1970-01-01 in exchange local time) of a trade.</summary>
    public int TradingDay(long timeUs) => (int)FloorDiv(timeUs + _offsetUs, CandleIntervals.DayUs);


    /// <summary>Start of trading day <paramref name="day"/>'s session, Unix microseconds UTC.</summary>
    public long SessionStartUs(int day) => (day * CandleIntervals.DayUs) + _openUs - _offsetUs;

    /// <summary>Local midnight that begins trading day <paramref name="day"/>, Unix microseconds UTC.</summary>
    public long DayStartUs(int day) => (day * CandleIntervals.DayUs) - _offsetUs;

    /// <summary>
    /// The first day of the last <paramref name="tradingDays"/> trading days up to <paramref name="today"/>, counting
    /// Monday to Friday (holidays count as trading days, so retention around them is a little shorter).
    /// </summary>
    public static int FirstOfTradingDays(int today, int tradingDays)
    {
        var day = today;
        var counted = 0;
        while (true)
        {
            // 1970-01-01 was a Thursday: day 0 is Thursday, so (day + 3) % 7 is 0 on Monday ... 4 on Friday.
            if (((day % 7) + 7 + 3) % 7 < 5 && ++counted == tradingDays)
            {
                return day;
            }

            day--;
        }
    }

    /// <summary>
    /// The bar of interval <paramref name="interval"/> that a trade at <paramref name="timeUs"/> belongs to, as
    /// [start, end) in Unix microseconds UTC; false for a trade outside the session when those make no bars.
    /// </summary>
    public bool Bucket(long timeUs, int interval, out long startUs, out long endUs)
    {
        var local = timeUs + _offsetUs;
        var dayStart = FloorDiv(local, CandleIntervals.DayUs) * CandleIntervals.DayUs;
        var timeOfDay = local - dayStart;
        if (!_outside && (timeOfDay < _openUs || timeOfDay >= _closeUs))
        {
            startUs = endUs = 0;
            return false;
        }

        if (interval == CandleIntervals.Day)
        {
            startUs = dayStart + _openUs;
            endUs = dayStart + (_outside ? CandleIntervals.DayUs : _closeUs);
        }
        else
        {
            var length = CandleIntervals.LengthUs[interval];
            startUs = dayStart + _openUs + (FloorDiv(timeOfDay - _openUs, length) * length);
            endUs = startUs + length;
            if (!_outside && endUs > dayStart + _closeUs)
            {
                endUs = dayStart + _closeUs;
            }
        }

        startUs -= _offsetUs;
        endUs -= _offsetUs;
        return true;
    }

    private static long FloorDiv(long a, long b) => (a / b) - ((a % b) < 0 ? 1 : 0);
}
