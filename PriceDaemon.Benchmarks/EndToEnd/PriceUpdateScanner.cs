using System.Buffers.Text;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>The four fields the harness needs from a <c>price_update</c>; the key points into the frame.</summary>
internal readonly ref struct PriceUpdate
{
    public PriceUpdate(ReadOnlySpan<byte> instrumentKey, double lastPrice, long timestampUs, long seq)
    {
        InstrumentKey = instrumentKey;
        LastPrice = lastPrice;
        TimestampUs = timestampUs;
        Seq = seq;
    }

    public ReadOnlySpan<byte> InstrumentKey { get; }

    public double LastPrice { get; }

    /// <summary>Unix microseconds UTC of <c>data.timestamp</c>.</summary>
    public long TimestampUs { get; }

    public long Seq { get; }
}

internal enum ServerMessageKind
{
    Other,
    PriceUpdate,
    Subscribed,
}

/// <summary>
/// Reads server messages by scanning for the field names instead of building a JSON DOM: thousands of
/// sockets share two cores with the daemon, so the client must cost far less per frame than the server.
/// Relies on what the protocol fixes: snake_case names, no whitespace inside values, <c>type</c> present.
/// </summary>
internal static class PriceUpdateScanner
{
    private static ReadOnlySpan<byte> PriceUpdateType => "\"type\":\"price_update\""u8;
    private static ReadOnlySpan<byte> PriceUpdateStart => "{\"type\":\"price_update\""u8;
    private static ReadOnlySpan<byte> DepthStart => "{\"type\":\"depth\""u8;
    private static ReadOnlySpan<byte> BookStart => "{\"type\":\"book\""u8;
    private static ReadOnlySpan<byte> BidsField => "\"bids\":["u8;

    private static readonly double[] PowersOfTen = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

    // The minute of the last timestamp this thread read ("2026-01-19T10:30") and its Unix microseconds: frames
    // of one run share it, so most timestamps cost a 16-byte compare and the seconds.
    [ThreadStatic]
    private static byte[]? t_minute;
    [ThreadStatic]
    private static long t_minuteUs;
    private static ReadOnlySpan<byte> SubscribedType => "\"type\":\"subscribed\""u8;
    private static ReadOnlySpan<byte> KeyField => "\"instrument_key\":\""u8;
    private static ReadOnlySpan<byte> PriceField => "\"last_price\":"u8;
    private static ReadOnlySpan<byte> TimestampField => "\"timestamp\":\""u8;
    private static ReadOnlySpan<byte> SeqField => "\"seq\":"u8;

    public static ServerMessageKind Classify(ReadOnlySpan<byte> json)
    {
        // Both servers start a price update with its type; anything else is looked for in a short prefix.
        // A depth or book frame is a market-data update too (the daemon's depth scenario); its "price" is the best bid.
        if (json.StartsWith(PriceUpdateStart) || json.StartsWith(DepthStart) || json.StartsWith(BookStart))
        {
            return ServerMessageKind.PriceUpdate;
        }

        // The type comes first in every frame either server writes; a short prefix search finds it.
        var head = json[..Math.Min(json.Length, 48)];
        if (head.IndexOf(PriceUpdateType) >= 0)
        {
            return ServerMessageKind.PriceUpdate;
        }

        return head.IndexOf(SubscribedType) >= 0 ? ServerMessageKind.Subscribed : ServerMessageKind.Other;
    }

    public static bool TryScan(ReadOnlySpan<byte> json, out PriceUpdate update)
    {
        update = default;
        // Each field is looked for after the previous one first (both servers write them in this order), and
        // from the start only if that fails, so any order still parses.
        var at = 0;
        var key = ValueAfter(json, KeyField, ref at);
        var keyEnd = key.IndexOf((byte)'"');
        if (keyEnd < 0)
        {
            return false;
        }

        double price;
        if (json.StartsWith(DepthStart) || json.StartsWith(BookStart))
        {
            // "bids":[[2451.45,120,3],...] or "bids":[]: the best bid's price, 0 for an empty side.
            var bids = ValueAfter(json, BidsField, ref at);
            price = 0;
            if (bids.IsEmpty || (bids[0] == '[' && !TryParsePrice(bids[1..], out price)))
            {
                return false;
            }
        }
        else if (!TryParsePrice(ValueAfter(json, PriceField, ref at), out price))
        {
            return false;
        }

        if (!TryParseTimestamp(ValueAfter(json, TimestampField, ref at), out var timestampUs)
            || !Utf8Parser.TryParse(ValueAfter(json, SeqField, ref at), out long seq, out _))
        {
            return false;
        }

        update = new PriceUpdate(key[..keyEnd], price, timestampUs, seq);
        return true;
    }

    /// <summary>Parses <c>2026-01-19T10:30:00.123Z</c> or <c>...00.123456Z</c> (any 0-7 fractional digits) to Unix µs.</summary>
    public static bool TryParseTimestamp(ReadOnlySpan<byte> text, out long unixUs)
    {
        unixUs = 0;
        if (text.Length < 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':')
        {
            return false;
        }

        var minute = text[..16];
        long minuteUs;
        if (t_minute is { } cached && minute.SequenceEqual(cached))
        {
            minuteUs = t_minuteUs;
        }
        else
        {
            if (!TryDigits(text[..4], out var year) || !TryDigits(text.Slice(5, 2), out var month) || !TryDigits(text.Slice(8, 2), out var day)
                || !TryDigits(text.Slice(11, 2), out var hour) || !TryDigits(text.Slice(14, 2), out var minutes)
                || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minutes > 59)
            {
                return false;
            }

            minuteUs = (new DateTime(year, month, day, hour, minutes, 0, DateTimeKind.Utc).Ticks - DateTime.UnixEpoch.Ticks) / 10;
            minute.CopyTo(t_minute ??= new byte[16]);
            t_minuteUs = minuteUs;
        }

        if (!TryDigits(text.Slice(17, 2), out var second) || second > 59)
        {
            return false;
        }

        var fractionTicks = 0L;
        var i = 19;
        if (text[i] == '.')
        {
            var scale = TimeSpan.TicksPerSecond;
            for (i++; i < text.Length && text[i] is >= (byte)'0' and <= (byte)'9'; i++)
            {
                scale /= 10;
                fractionTicks += (text[i] - '0') * scale;
            }
        }

        if (i >= text.Length || text[i] != 'Z')
        {
            return false;
        }

        unixUs = minuteUs + (second * 1_000_000L) + (fractionTicks / 10);
        return true;
    }

    /// <summary>
    /// A JSON number as the servers write prices (<c>2451.55</c>): up to 15 digits with an optional point are
    /// read as an integer divided by a power of ten, which is exact and correctly rounded (both are exact
    /// doubles). Anything else (a sign, an exponent, more digits) goes to the general parser.
    /// </summary>
    public static bool TryParsePrice(ReadOnlySpan<byte> text, out double value)
    {
        long mantissa = 0;
        var digits = 0;
        var decimals = -1;
        var i = 0;
        for (; i < text.Length; i++)
        {
            var c = text[i];
            if (c is >= (byte)'0' and <= (byte)'9')
            {
                mantissa = (mantissa * 10) + (c - '0');
                digits++;
                decimals += decimals >= 0 ? 1 : 0;
            }
            else if (c == '.' && decimals < 0)
            {
                decimals = 0;
            }
            else
            {
                break;
            }
        }

        if (digits is 0 or > 15 || (i < text.Length && text[i] is (byte)'e' or (byte)'E' or (byte)'-' or (byte)'+'))
        {
            return Utf8Parser.TryParse(text, out value, out _);
        }

        value = decimals > 0 ? mantissa / PowersOfTen[decimals] : mantissa;
        return true;
    }

    private static ReadOnlySpan<byte> ValueAfter(ReadOnlySpan<byte> json, ReadOnlySpan<byte> field, scoped ref int from)
    {
        var at = json[from..].IndexOf(field);
        if (at >= 0)
        {
            at += from;
        }
        else if ((at = json.IndexOf(field)) < 0)
        {
            return [];
        }

        from = at + field.Length;
        return json[from..];
    }

    private static bool TryDigits(ReadOnlySpan<byte> digits, out int value)
    {
        value = 0;
        foreach (var d in digits)
        {
            if (d is < (byte)'0' or > (byte)'9')
            {
                return false;
            }

            value = (value * 10) + (d - '0');
        }

        return true;
    }
}
