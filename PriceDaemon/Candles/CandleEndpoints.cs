using System.Buffers;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using PriceDaemon.Http;
using PriceDaemon.Instruments;

namespace PriceDaemon.Candles;

/// <summary>
/// <c>GET /api/candles/{instrument_key}?interval=1m&amp;from=..&amp;to=..&amp;limit=..</c>: bars for chart libraries that load
/// history over HTTP. The newest <c>limit</c> bars starting in [from, to), oldest first; the forming bar last, with
/// <c>"closed": false</c>, when it starts in the range. Times are ISO 8601 or Unix seconds.
/// </summary>
internal static class CandleEndpoints
{
    public const int MaxLimit = 5000;
    public const int DefaultLimit = 500;
    private static readonly JsonWriterOptions _options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static IEndpointRouteBuilder MapCandleEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/candles/{instrumentKey}", IResult (string instrumentKey, string? interval, string? from, string? to, string? limit, InstrumentRegistry registry, IServiceProvider services) =>
        {
            if (services.GetService<CandleService>() is not { } history || services.GetService<CandleBook>() is not { } book)
            {
                return Error(StatusCodes.Status404NotFound, "candles_disabled", "candles are off on this daemon (Candles:Enabled=false)");
            }

            if (!registry.TryGet(instrumentKey, out var instrument))
            {
                return Error(StatusCodes.Status404NotFound, "unknown_instrument", $"no instrument '{instrumentKey}'; GET /api/instruments lists them");
            }

            if (!CandleIntervals.TryParse(interval, out var index))
            {
                return Error(StatusCodes.Status400BadRequest, "invalid_interval", interval is null
                    ? $"missing ?interval= (one of {CandleIntervals.List})"
                    : $"unknown interval '{interval}'; expected one of {CandleIntervals.List}");
            }

            if (!TryTime(from, long.MinValue, out var fromUs))
            {
                return Error(StatusCodes.Status400BadRequest, "invalid_from", $"'from' must be ISO 8601 (2026-12-01T09:15:00+05:30) or Unix seconds; got '{from}'");
            }

            if (!TryTime(to, long.MaxValue, out var toUs))
            {
                return Error(StatusCodes.Status400BadRequest, "invalid_to", $"'to' must be ISO 8601 (2026-12-01T15:30:00+05:30) or Unix seconds; got '{to}'");
            }

            if (fromUs >= toUs)
            {
                return Error(StatusCodes.Status400BadRequest, "invalid_range", "'from' must be before 'to' (bars starting in [from, to) are returned)");
            }

            var count = DefaultLimit;
            if (limit is not null && (!int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out count) || count is < 1 or > MaxLimit))
            {
                return Error(StatusCodes.Status400BadRequest, "invalid_limit", $"'limit' must be a whole number from 1 to {MaxLimit}; got '{limit}'");
            }

            Span<Bar> newest = stackalloc Bar[CandleIntervals.Count];
            book.Read(instrument.Id, newest, out _, out _);
            var forming = newest[index];
            var withForming = forming.Exists && forming.Forming && forming.StartUs >= fromUs && forming.StartUs < toUs;
            var bars = history.History(instrument.Key, index, withForming ? count - 1 : count, fromUs, toUs);
            var buffer = new ArrayBufferWriter<byte>(256 + (bars.Count * 96));
            using (var w = new Utf8JsonWriter(buffer, _options))
            {
                w.WriteStartObject();
                w.WriteString("instrument_key", instrument.Key);
                w.WriteString("interval", CandleIntervals.Names[index]);
                w.WriteStartArray("candles");
                foreach (var bar in bars)
                {
                    CandleFrames.WriteBar(w, bar, closedFlag: false);
                }

                if (withForming)
                {
                    CandleFrames.WriteBar(w, forming, closedFlag: true);
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            return TypedResults.Bytes(buffer.WrittenSpan.ToArray(), "application/json; charset=utf-8");
        });

        return app;
    }

    /// <summary>Unix seconds (what chart libraries use) or ISO 8601; a time without an offset is UTC.</summary>
    private static bool TryTime(string? text, long missing, out long unixUs)
    {
        unixUs = missing;
        if (text is null)
        {
            return true;
        }

        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var seconds) && Math.Abs(seconds) < 100_000_000_000L)
        {
            unixUs = seconds * 1_000_000;
            return true;
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            unixUs = (time.UtcTicks - DateTime.UnixEpoch.Ticks) / 10;
            return true;
        }

        return false;
    }

    private static IResult Error(int status, string code, string message) =>
        TypedResults.Json(new ErrorBody(code, message), DaemonJsonContext.Relaxed.ErrorBody, statusCode: status);
}
