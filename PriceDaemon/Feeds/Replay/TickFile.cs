using System.Globalization;
using System.Text;
using System.Text.Json;

namespace PriceDaemon.Feeds.Replay;

/// <summary>One line of a tick file.</summary>
internal readonly record struct TickRecord(string InstrumentKey, long TimeUs, double LastPrice, long Volume);

/// <summary>
/// The tick file format that replay reads and recording writes, one tick a line:
/// CSV <c>instrument_key,timestamp,last_price,volume</c> (header optional, <c>#</c> comments) or JSON lines
/// <c>{"instrument_key":..,"timestamp":..,"last_price":..,"volume":..}</c>. The timestamp is ISO 8601 UTC
/// (recorded with microseconds, so a recorded day replays to the microsecond) or Unix milliseconds.
/// </summary>
internal static class TickFile
{
    public const string CsvHeader = "instrument_key,timestamp,last_price,volume";

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

    public static string FormatTime(long unixUs) =>
        DateTime.UnixEpoch.AddTicks(unixUs * 10).ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    private static TickRecord ParseCsv(ReadOnlySpan<char> line)
    {
        Span<Range> fields = stackalloc Range[5];
        if (line.Split(fields, ',') != 4)
        {
            throw new FormatException($"expected '{CsvHeader}'");
        }

        return Create(line[fields[0]].Trim().ToString(), line[fields[1]].Trim().ToString(), line[fields[2]].Trim(), line[fields[3]].Trim());
    }

    private static TickRecord ParseJson(string line)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
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
