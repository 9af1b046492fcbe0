using System.Globalization;
using Microsoft.Playwright;
using PriceDaemon.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace PriceDaemon.Tests.Browser;

/// <summary>The board's detail panel: a row opens its live candlestick chart and the depth ladder beside it.</summary>
public sealed partial class BoardTests
{
    [Test]
    public async Task SelectingARow_OpensALiveCandleChart_AndALiveDepthLadder()
    {
        // Forty minutes of trades up to now, one every 5 s, replayed 60 times faster: a bar a second, each rolling over by
        // a trade, the forming one updating about twelve times a second.
        var file = Path.Combine(_folder, "ticks.csv");
        var start = DateTimeOffset.UtcNow.AddMinutes(-40);
        var random = new Random(16);
        var price = 1450.0;
        var lines = new List<string> { "instrument_key,timestamp,last_price,volume" };
        for (var i = 0; i < 40 * 12 + 240; i++)
        {
            price = Math.Round(price * (1 + ((random.NextDouble() - 0.49) * 0.004)), 2);
            var at = start.AddSeconds(i * 5).UtcDateTime;
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"{Reliance},{at:yyyy-MM-dd'T'HH:mm:ss'Z'},{price},{1000 + (i * 37)}"));
            // A book after each trade (format 2): five levels a side around the price, a tick apart.
            var bids = string.Join(';', Enumerable.Range(1, 5).Select(k => string.Create(CultureInfo.InvariantCulture, $"{Math.Round(price - (0.05 * k), 2)}:{100 * k}:{k}")));
            var asks = string.Join(';', Enumerable.Range(1, 5).Select(k => string.Create(CultureInfo.InvariantCulture, $"{Math.Round(price + (0.05 * k), 2)}:{90 * k}:{k}")));
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"{Reliance},{at:yyyy-MM-dd'T'HH:mm:ss'Z'},depth,{bids},{asks}"));
        }

        await File.WriteAllLinesAsync(file, lines);
        await using var daemon = await DaemonProcess.StartAsync(_folder,
            "--Feed:Source=Replay", $"--Feed:Replay:Path={file}", "--Feed:Replay:Speed=60", "--Throttle:MinIntervalMs=100",
            "--Candles:IncludeOutsideSession=true");
        await _page.SetViewportSizeAsync(1000, 760);
        await _page.GotoAsync(daemon.BaseUri.ToString());
        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Live");

        await Row(Reliance).Locator("td.symbol").ClickAsync();
        await Expect(_page.Locator("#detail")).ToBeVisibleAsync();
        await Expect(_page.Locator("#detail-title")).ToHaveTextAsync("RELIANCE");
        await Expect(_page.Locator("#detail-intervals button[aria-pressed=true]")).ToHaveTextAsync("1m");
        await Expect(_page.Locator("#chart canvas").First).ToBeVisibleAsync();

        // Bars arrive and keep coming: the chart's count grows past a dozen while the page stays open.
        await _page.WaitForFunctionAsync("() => Number(document.querySelector('#chart').dataset.bars) >= 12", null, new PageWaitForFunctionOptions { Timeout = 60_000 });
        // The forming bar is live: its close changes while the page watches it.
        var close = await _page.EvaluateAsync<double>($"() => priceSocket.candles('{Reliance}', '1m').forming.c");
        await _page.WaitForFunctionAsync(
            $"c => {{ const v = priceSocket.candles('{Reliance}', '1m'); return v.forming && v.forming.c !== c; }}",
            close,
            new PageWaitForFunctionOptions { Timeout = 30_000 });
        var bars = await _page.EvaluateAsync<int>($"() => priceSocket.candles('{Reliance}', '1m').bars.length");
        Assert.That(bars, Is.GreaterThanOrEqualTo(11), "closed bars held by the client");

        // The ladder beside it shows the replayed book: five asks above five bids, live.
        await Expect(_page.Locator("#ladder")).ToHaveAttributeAsync("data-state", "live");
        await Expect(_page.Locator("#ladder-body tr.ask")).ToHaveCountAsync(5);
        await Expect(_page.Locator("#ladder-body tr.bid")).ToHaveCountAsync(5);
        // Both read in one go: the book moves on while the page is watched.
        var best = await _page.EvaluateAsync<string[]>("() => [document.querySelector('#ladder-body tr.bid td.price').textContent, [...document.querySelectorAll('#ladder-body tr.ask td.price')].at(-1).textContent]");
        var bestBid = double.Parse(best[0], NumberStyles.Any, CultureInfo.InvariantCulture);
        var bestAsk = double.Parse(best[1], NumberStyles.Any, CultureInfo.InvariantCulture);
        Assert.That(bestBid, Is.LessThan(bestAsk), "best bid below best ask");

        var screenshot = await SaveScreenshotAsync("board-chart.png", "the chart and depth ladder of a selected instrument");
        if (Environment.GetEnvironmentVariable("PRICEDAEMON_UPDATE_DOCS") == "1")
        {
            File.Copy(screenshot, Path.Combine(RepositoryRoot(), "docs", "board-chart.png"), overwrite: true);
        }

        // Another interval: a 5m chart of the same trades, and closing the panel lets the subscriptions go.
        await _page.Locator("#detail-intervals").GetByRole(AriaRole.Button, new() { Name = "5m", Exact = true }).ClickAsync();
        await _page.WaitForFunctionAsync($"() => priceSocket.candles('{Reliance}', '5m')?.bars.length >= 1", null, new PageWaitForFunctionOptions { Timeout = 30_000 });
        Assert.That(await _page.EvaluateAsync<bool>($"() => priceSocket.candles('{Reliance}', '1m') === undefined"), Is.True, "the 1m bars were released");
        await _page.Locator("#detail-close").ClickAsync();
        await Expect(_page.Locator("#detail")).ToBeHiddenAsync();
        Assert.That(await _page.EvaluateAsync<bool>($"() => priceSocket.candles('{Reliance}', '5m') === undefined"), Is.True, "the 5m bars were released");
    }
}
