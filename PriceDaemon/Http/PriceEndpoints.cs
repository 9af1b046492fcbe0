using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Http;

/// <summary>
/// The REST side: the instrument universe and last known prices, for pages that are not connected yet.
/// Prices come from the cache only: it was loaded with all of storage before the daemon became ready and
/// only gets newer, so a storage read on a cache miss could find nothing the cache lacks.
/// </summary>
internal static class PriceEndpoints
{
    public static IEndpointRouteBuilder MapPriceEndpoints(this IEndpointRouteBuilder app)
    {
        var instrumentsBody = (InstrumentRegistry registry) =>
            TypedResults.Json(registry.All.Select(PriceBodies.Instrument).ToArray(), DaemonJsonContext.Relaxed.InstrumentBodyArray);
        app.MapGet("/api/instruments", instrumentsBody);

        app.MapGet("/api/prices", (InstrumentRegistry registry, PriceCache cache, FeedStatus feed) =>
        {
            var connected = feed.IsConnected;
            // Cached frames are pooled: only plain values are copied inside the scope (no allocation there, so the
            // scope lasts microseconds); the strings and the dictionary are built after it.
            var values = new PriceValues[registry.Count];
            var known = new bool[registry.Count];
            using (var scope = cache.Read())
            {
                for (var id = 0; id < values.Length; id++)
                {
                    if (cache.Get(id) is { } frame)
                    {
                        values[id] = PriceBodies.Copy(frame);
                        known[id] = true;
                    }
                }
            }

            var prices = new Dictionary<string, PriceData>(registry.Count, StringComparer.Ordinal);
            foreach (var instrument in registry.All)
            {
                if (known[instrument.Id])
                {
                    prices[instrument.Key] = PriceBodies.Data(values[instrument.Id], connected);
                }
            }

            return TypedResults.Json(prices, DaemonJsonContext.Relaxed.DictionaryStringPriceData);
        });

        // The key contains '|': clients send it URL-encoded (%7C), routing decodes it.
        app.MapGet("/api/prices/{instrumentKey}", IResult (string instrumentKey, InstrumentRegistry registry, PriceCache cache, FeedStatus feed) =>
        {
            if (!registry.TryGet(instrumentKey, out var instrument))
            {
                return TypedResults.Json(
                    new ErrorBody("unknown_instrument", $"no instrument '{instrumentKey}'; GET /api/instruments lists them"),
                    DaemonJsonContext.Relaxed.ErrorBody,
                    statusCode: StatusCodes.Status404NotFound);
            }

            PriceValues? values;
            using (var scope = cache.Read())
            {
                values = cache.Get(instrument.Id) is { } frame ? PriceBodies.Copy(frame) : null;
            }

            if (values is not { } price)
            {
                return TypedResults.Json(
                    new ErrorBody("no_price", $"no price is known yet for '{instrumentKey}'"),
                    DaemonJsonContext.Relaxed.ErrorBody,
                    statusCode: StatusCodes.Status404NotFound);
            }

            return TypedResults.Json(new PriceBody(instrument.Key, PriceBodies.Data(price, feed.IsConnected)), DaemonJsonContext.Relaxed.PriceBody);
        });

        return app;
    }
}
