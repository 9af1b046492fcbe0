using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using PriceDaemon.Candles;
using PriceDaemon.Nats;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Nats;

/// <summary>
/// Candle history behind NATS, through a real <c>nats-server -js</c>: an edge started after the ingest closed its bars
/// serves them, taken from the ingest's candle stream into its own file.
/// </summary>
[NonParallelizable]
public sealed class NatsCandleTests
{
    private const string Key = "NSE_EQ|INE002A01018";

    [Test]
    public async Task AnEdgeStartedLater_ServesTheIngestsClosedBars_FromTheCandleStream()
    {
        var folder = Directory.CreateTempSubdirectory("pricedaemon-nats-candles-").FullName;
        try
        {
            await using var nats = await NatsServer.StartAsync(folder);
            await using var ingest = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Nats:Url"] = nats.Url, ["Nats:Publish"] = "true" });
            static long Ist(int minute, int second) => new DateTimeOffset(2026, 11, 30, 9, minute, second, TimeSpan.FromHours(5.5)).ToUnixTimeMilliseconds();
            await ingest.TickAsync(Key, 100.0, 1000, Ist(15, 1));
            await ingest.TickAsync(Key, 104.0, 1300, Ist(15, 40));
            await ingest.TickAsync(Key, 101.0, 1400, Ist(16, 5));
            await ingest.TickAsync(Key, 102.0, 1450, Ist(17, 5)); // closes 09:15 and 09:16
            var publisher = ingest.Services.GetRequiredService<NatsCandlePublisher>();
            await Eventually.TrueAsync(() => Volatile.Read(ref publisher.Published) == 2, "the two closed 1m bars published");

            await using var edge = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Feed:Source"] = "Nats", ["Nats:Url"] = nats.Url });
            await edge.Services.GetRequiredService<NatsCandleBackfill>().Completion;
            using var http = edge.Http();
            using var response = await http.GetAsync($"/api/candles/{Uri.EscapeDataString(Key)}?interval=1m");
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var bars = body.RootElement.GetProperty("candles").EnumerateArray()
                .Select(b => (b.GetProperty("t").GetString(), b.GetProperty("o").GetDouble(), b.GetProperty("h").GetDouble(), b.GetProperty("c").GetDouble(), b.GetProperty("v").GetInt64()))
                .ToList();
            Assert.That(bars, Is.EqualTo(new[]
            {
                ("2026-11-30T03:45:00Z", 100.0, 104.0, 104.0, 300L),
                ("2026-11-30T03:46:00Z", 101.0, 101.0, 101.0, 100L),
            }), "the ingest's bars, on an edge that saw none of their ticks");

            // The stream's bars and the edge's own are one set: no bar twice.
            Assert.That(edge.Services.GetRequiredService<CandleService>().History(Key, 0, 10), Has.Count.EqualTo(2));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
