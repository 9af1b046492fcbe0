using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Depth;

/// <summary>The simulated book's consistency, the depth frame's exact bytes, and the simulated default showing depth.</summary>
[TestFixture]
public sealed class DepthSourceTests
{
    [Test]
    public void SimulatedBook_IsConsistent_AroundItsPrice()
    {
        var random = new Random(7);
        var sizes = new HashSet<long>();
        var bidCounts = new HashSet<int>();
        // The simulated walk stays on the 0.05 tick.
        foreach (var price in Enumerable.Range(0, 2000).Select(i => Math.Round(0.05 * (1 + (i * 27)), 2)))
        {
            var book = SimulatedFeed.Book(random, 3, price, 1, 2);
            Assert.That(book.Bids, Is.Not.Empty);
            Assert.That(book.Asks, Has.Length.InRange(20, 30));
            Assert.That(book.Bids[0].Price, Is.LessThan(book.Asks[0].Price), $"best bid < best ask at {price}");
            Assert.That(book.Asks[0].Price - book.Bids[0].Price, Is.InRange(0.049, 0.101), "a spread of a tick or two");
            Assert.That(price, Is.InRange(book.Bids[0].Price, book.Asks[0].Price).Or.LessThan(0.1), "the last price is inside the spread");
            Assert.That(book.Bids.Select(l => l.Price), Is.Ordered.Descending.And.Unique);
            Assert.That(book.Asks.Select(l => l.Price), Is.Ordered.Ascending.And.Unique);
            Assert.That(book.Bids.Concat(book.Asks), Has.All.Matches<DepthLevel>(l => l.Quantity > 0 && l.Orders > 0 && l.Price > 0 && l.Orders <= l.Quantity));
            Assert.That(book.Bids.Concat(book.Asks).Select(l => Math.Round(l.Price / 0.05, 6) % 1), Has.All.EqualTo(0), "on the 0.05 tick");
            sizes.Add(book.Bids[0].Quantity);
            bidCounts.Add(book.Bids.Length);
        }

        Assert.That(sizes, Has.Count.GreaterThan(5), "sizes move");
        Assert.That(bidCounts, Has.Count.GreaterThan(3), "levels appear and vanish");
    }

    [Test]
    public void DepthEncoder_WritesTheDesignFrame()
    {
        var instrument = new InstrumentRegistry([("NSE_EQ|INE002A01018", "RELIANCE", "Reliance Industries", 2450)])[0];
        var book = new DepthBook(
            0,
            [new DepthLevel(2451.45, 120, 3), new DepthLevel(2451.4, 5, 1)],
            [new DepthLevel(2451.6, 80, 2)],
            1_768_795_200_123_000,
            0,
            PriceSource.Live);
        var frame = new DepthEncoder().Encode(instrument, book, 17, full: false);
        Assert.That(Encoding.UTF8.GetString(frame.Utf8.Span), Is.EqualTo(
            """{"type":"depth","instrument_key":"NSE_EQ|INE002A01018","data":{"bids":[[2451.45,120,3],[2451.4,5,1]],"asks":[[2451.6,80,2]],"timestamp":"2026-01-19T04:00:00.123Z","seq":17,"source":"live"}}"""));
        Assert.That(Encoding.UTF8.GetString(frame.AsStale().Utf8.Span), Does.EndWith("\"source\":\"live\",\"stale\":true}}"));
        Assert.That(Encoding.UTF8.GetString(new DepthEncoder().Encode(instrument, book, 17, full: true).Utf8.Span), Does.StartWith("{\"type\":\"book\","));
        using var _ = JsonDocument.Parse(frame.AsStale().Utf8);
    }

    [Test]
    public async Task SimulatedFeed_ShowsDepth_OnlyForInstrumentsSomeoneWatches()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string>
        {
            ["Feed:Source"] = "Simulated",
            ["Feed:Simulated:MinIntervalMs"] = "10",
            ["Feed:Simulated:MaxIntervalMs"] = "30",
        });
        var ingest = daemon.Services.GetRequiredService<DepthIngest>();
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SubscribeAsync("NSE_EQ|INE002A01018");
        await client.NextPriceAsync("NSE_EQ|INE002A01018");
        await client.NextPriceAsync("NSE_EQ|INE002A01018"); // a tick after the first: the feed runs
        Assert.That(Volatile.Read(ref ingest.Written), Is.Zero, "no book is built while nobody watches depth");

        await client.SendAsync("""{"action":"subscribe","channel":"book","instruments":["NSE_EQ|INE002A01018"]}""");
        var book = await client.NextAsync("book");
        var data = book.GetProperty("data");
        Assert.That(data.GetProperty("source").GetString(), Is.EqualTo("simulated"));
        var bids = DepthSocketTests.Levels(book, "bids");
        var asks = DepthSocketTests.Levels(book, "asks");
        Assert.That(bids, Has.Count.InRange(20, 30));
        Assert.That(bids[0][0], Is.LessThan(asks[0][0]));
        Assert.That(bids.Select(l => l[0]), Is.Ordered.Descending);
        Assert.That(asks.Select(l => l[0]), Is.Ordered.Ascending);
    }
}
