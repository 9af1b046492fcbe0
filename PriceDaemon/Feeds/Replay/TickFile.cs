using System.Globalization;
using System.Text;
using System.Text.Json;

namespace PriceDaemon.Feeds.Replay;

/// <summary>One line of a tick file: a trade, or (format 2) an order book, when <see cref="Bids"/> is set.</summary>
internal readonly record struct TickRecord(string InstrumentKey, long TimeUs, double LastPrice, long Volume, DepthLevel[]? Bids = null, DepthLevel[]? Asks = null)
{
    public bool IsDepth => Bids is not null;
}

/// <summary>
/// The tick file format that replay reads and recording writes, one tick a line:
/// CSV <c>instrument_key,timestamp,last_price,volume</c> (header optional, <c>#</c> comments) or JSON lines
/// <c>{"instrument_key":..,"timestamp":..,"last_price":..,"volume":..}</c>. The timestamp is ISO 8601 UTC
/// (recorded with microseconds, so a recorded day replays to the microsecond) or Unix milliseconds.
/// Format 2 adds order-book lines between the trades: CSV <c>instrument_key,timestamp,depth,BIDS,ASKS</c> where a side is
/// <c>price:quantity:orders</c> levels joined by <c>;</c>, best first, or JSON lines <c>{"instrument_key":..,"timestamp":..,
/// "bids":[[price,quantity,orders],..],"asks":[..]}</c>. A format 1 file (trades only) reads as before; a reader of format 1
/// skips a book line as a bad line and plays the trades.
/// </summary>
internal static class TickFile
{
    public const string CsvHeader = "instrument_key,timestamp,last_price,volume";

    /// <summary>The comment a recording starts with: which format, and how its book lines read.</summary>
    public const string FormatComment = "# pricedaemon tick file, format 2: book lines are instrument_key,timestamp,depth,BIDS,ASKS (price:quantity:orders;... best first)";

    public static bool IsJsonLines(string path) =>
        path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".ndjson", StringComparison.OrdinalIgnoreCase);

    /// <summary>Parses one line. Returns null for blank lines, comments and the header; throws <see cref="FormatException"/> for a bad line.</summary>
    public static TickRecord? Parse(string line, bool jsonLines)
    {
        var span = line.AsSpan().Trim();
        if (span.IsEmpty || span[0] == '#' || span.StartsWith("instrument_key,", StringComparison.Ordinal))
        {
            return null;
        }

        return jsonLines ? ParseJson(line) : ParseCsv(span);
    }

    public static string Format(in TickRecord tick, bool jsonLines)
    {
        if (tick.IsDepth)
        {
            return FormatDepth(tick, jsonLines);
        }

        var time = FormatTime(tick.TimeUs);
        var price = tick.LastPrice.ToString("R", CultureInfo.InvariantCulture);
        var volume = tick.Volume.ToString(CultureInfo.InvariantCulture);
        if (!jsonLines)
        {
            return $"{tick.InstrumentKey},{time},{price},{volume}";
        }

        var builder = new StringBuilder(128);
        builder.Append("{\"instrument_key\":").Append(JsonSerializer.Serialize(tick.InstrumentKey))
            .Append(",\"timestamp\":\"").Append(time)
            .Append("\",\"last_price\":").Append(price)
            .Append(",\"volume\":").Append(volume).Append('}');
        return builder.ToString();
    }

    private static string FormatDepth(in TickRecord book, bool jsonLines)
    {
        var builder = new StringBuilder(512);
        if (!jsonLines)
        {
            builder.Append(book.InstrumentKey).Append(',').Append(FormatTime(book.TimeUs)).Append(",depth,");
            AppendCsvSide(builder, book.Bids!);
            builder.Append(',');
            AppendCsvSide(builder, book.Asks!);
            return builder.ToString();
        }

        builder.Append("{\"instrument_key\":").Append(JsonSerializer.Serialize(book.InstrumentKey))
            .Append(",\"timestamp\":\"").Append(FormatTime(book.TimeUs)).Append("\",\"bids\":");
        AppendJsonSide(builder, book.Bids!);
        builder.Append(",\"asks\":");
        AppendJsonSide(builder, book.Asks!);
        return builder.Append('}').ToString();
    }

    private static void AppendCsvSide(StringBuilder builder, DepthLevel[] side)
    {
        for (var i = 0; i < side.Length; i++)
        {
            builder.Append(i == 0 ? "" : ";").Append(CultureInfo.InvariantCulture, $"{side[i].Price:R}:{side[i].Quantity}:{side[i].Orders}");
        }
    }

    private static void AppendJsonSide(StringBuilder builder, DepthLevel[] side)
    {
        builder.Append('[');
        for (var i = 0; i < side.Length; i++)
        {
            builder.Append(i == 0 ? "" : ",").Append(CultureInfo.InvariantCulture, $"[{side[i].Price:R},{side[i].Quantity},{side[i].Orders}]");
        }

        builder.Append(']');
    }

    public static string FormatTime(long unixUs) =>
        DateTime.UnixEpoch.AddTicks(unixUs * 10).ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    private static TickRecord ParseCsv(ReadOnlySpan<char> line)
    {
        Span<Range> fields = stackalloc Range[6];
        var count = line.Split(fields, ',');
        if (count == 5 && line[fields[2]].Trim().SequenceEqual("depth"))
        {
            var key = line[fields[0]].Trim().ToString();
            return CreateBook(key, line[fields[1]].Trim().ToString(), ParseCsvSide(line[fields[3]]), ParseCsvSide(line[fields[4]]));
        }

        if (count != 4)
        {
            throw new FormatException($"expected '{CsvHeader}' (or a book line 'instrument_key,timestamp,depth,BIDS,ASKS')");
        }

        return Create(line[fields[0]].Trim().ToString(), line[fields[1]].Trim().ToString(), line[fields[2]].Trim(), line[fields[3]].Trim());
    }

    private static List<DepthLevel> ParseCsvSide(ReadOnlySpan<char> side)
    {
        var levels = new List<DepthLevel>();
        Span<Range> parts = stackalloc Range[4];
        foreach (var range in side.Trim().Split(';'))
        {
            var level = side.Trim()[range];
            if (level.IsEmpty)
            {
                continue;
            }

            if (level.Split(parts, ':') != 3)
            {
                throw new FormatException($"book level '{level}' is not price:quantity:orders");
            }

            levels.Add(Level(level[parts[0]], level[parts[1]], level[parts[2]]));
        }

        return levels;
    }

    private static DepthLevel Level(ReadOnlySpan<char> price, ReadOnlySpan<char> quantity, ReadOnlySpan<char> orders)
    {
        if (!double.TryParse(price, NumberStyles.Float, CultureInfo.InvariantCulture, out var p) || !(p > 0) || double.IsInfinity(p)
            || !long.TryParse(quantity, NumberStyles.Integer, CultureInfo.InvariantCulture, out var q) || q <= 0
            || !int.TryParse(orders, NumberStyles.Integer, CultureInfo.InvariantCulture, out var o) || o < 0)
        {
            throw new FormatException($"book level '{price}:{quantity}:{orders}' needs a positive price and quantity and orders >= 0");
        }

        return new DepthLevel(p, q, o);
    }

    private static TickRecord CreateBook(string key, string time, List<DepthLevel> bids, List<DepthLevel> asks)
    {
        if (key.Length == 0)
        {
            throw new FormatException("empty instrument_key");
        }

        return new TickRecord(key, ParseTime(time), 0, 0, DepthBook.Side(bids, bids: true), DepthBook.Side(asks, bids: false));
    }

    private static List<DepthLevel> ParseJsonSide(JsonElement side)
    {
        if (side.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException("'bids' and 'asks' must be arrays of [price,quantity,orders]");
        }

        var levels = new List<DepthLevel>();
        foreach (var level in side.EnumerateArray())
        {
            if (level.ValueKind != JsonValueKind.Array || level.GetArrayLength() != 3 || level.EnumerateArray().Any(static v => v.ValueKind != JsonValueKind.Number))
            {
                throw new FormatException("a book level must be [price,quantity,orders]");
            }

            levels.Add(Level(level[0].GetRawText(), level[1].GetRawText(), level[2].GetRawText()));
        }

        return levels;
    }

    private static TickRecord ParseJson(string line)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("bids", out var bids) && root.TryGetProperty("asks", out var asks)
                && root.TryGetProperty("instrument_key", out var bookKey) && bookKey.ValueKind == JsonValueKind.String
                && root.TryGetProperty("timestamp", out var bookTime))
            {
                var bookTimeText = bookTime.ValueKind == JsonValueKind.String ? bookTime.GetString()! : bookTime.GetRawText();
                return CreateBook(bookKey.GetString()!, bookTimeText, ParseJsonSide(bids), ParseJsonSide(asks));
            }

            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("instrument_key", out var key) || key.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("timestamp", out var time)
                || !root.TryGetProperty("last_price", out var price) || price.ValueKind != JsonValueKind.Number)
            {
                throw new FormatException("expected {\"instrument_key\":..,\"timestamp\":..,\"last_price\":..,\"volume\":..}");
            }

            var volume = root.TryGetProperty("volume", out var v) && v.ValueKind == JsonValueKind.Number ? v.GetRawText() : "0";
            var timeText = time.ValueKind == JsonValueKind.String ? time.GetString()! : time.GetRawText();
            return Create(key.GetString()!, timeText, price.GetRawText(), volume);
        }
        catch (JsonException ex)
        {
            throw new FormatException($"not JSON: {ex.Message}", ex);
        }
    }

    private static TickRecord Create(string key, string time, ReadOnlySpan<char> price, ReadOnlySpan<char> volume)
    {
        if (key.Length == 0)
        {
            throw new FormatException("empty instrument_key");
        }

        if (!double.TryParse(price, NumberStyles.Float, CultureInfo.InvariantCulture, out var lastPrice) || !(lastPrice > 0) || double.IsInfinity(lastPrice))
        {
            throw new FormatException($"last_price '{price}' is not a positive number");
        }

        if (!long.TryParse(volume, NumberStyles.Integer, CultureInfo.InvariantCulture, out var vol) || vol < 0)
        {
            throw new FormatException($"volume '{volume}' is not a whole number");
        }

        return new TickRecord(key, ParseTime(time), lastPrice, vol);
    }

    private static long ParseTime(string text)
    {
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var unixMs))
        {
            return unixMs * 1000;
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            return (time.UtcTicks - DateTime.UnixEpoch.Ticks) / 10;
        }

        throw new FormatException($"timestamp '{text}' is neither ISO 8601 nor Unix milliseconds");
    }
}
