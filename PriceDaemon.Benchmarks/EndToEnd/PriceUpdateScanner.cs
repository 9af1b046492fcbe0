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
    private static ReadOnlySpan<byte> SubscribedType => "\"type\":\"subscribed\""u8;
    private static ReadOnlySpan<byte> KeyField => "\"instrument_key\":\""u8;
    private static ReadOnlySpan<byte> PriceField => "\"last_price\":"u8;
    private static ReadOnlySpan<byte> TimestampField => "\"timestamp\":\""u8;
    private static ReadOnlySpan<byte> SeqField => "\"seq\":"u8;

    public static ServerMessageKind Classify(ReadOnlySpan<byte> json)
    {
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

        if (!Utf8Parser.TryParse(ValueAfter(json, PriceField, ref at), out double price, out _)
            || !TryParseTimestamp(ValueAfter(json, TimestampField, ref at), out var timestampUs)
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

        if (!TryDigits(text[..4], out var year) || !TryDigits(text.Slice(5, 2), out var month) || !TryDigits(text.Slice(8, 2), out var day)
            || !TryDigits(text.Slice(11, 2), out var hour) || !TryDigits(text.Slice(14, 2), out var minute) || !TryDigits(text.Slice(17, 2), out var second)
            || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
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

        var ticks = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc).Ticks + fractionTicks;
        unixUs = (ticks - DateTime.UnixEpoch.Ticks) / 10;
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
