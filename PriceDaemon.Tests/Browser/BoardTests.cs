using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Microsoft.Playwright;
using PriceDaemon.Feeds;
using PriceDaemon.Sockets;
using PriceDaemon.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace PriceDaemon.Tests.Browser;

/// <summary>
/// The live board at GET / in headless Chromium, against the real daemon as its own process on 127.0.0.1
/// with a fast simulated feed: what a person watching the page sees.
/// </summary>
public sealed partial class BoardTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";
    private const string Wipro = "NSE_EQ|INE075A01022";
    private const string Tcs = "NSE_EQ|INE467B01029";

    private static readonly string[] _fastFeed =
    [
        "--Feed:Simulated:MinIntervalMs=100", "--Feed:Simulated:MaxIntervalMs=200", "--Throttle:MinIntervalMs=0",
    ];

    private Chromium _chromium = null!;
    private string _folder = null!;
    private IBrowserContext _context = null!;
    private IPage _page = null!;
    private readonly List<string> _console = [];

    [OneTimeSetUp]
    public async Task LaunchBrowser()
    {
        _chromium = await Chromium.LaunchAsync();
        // The page reconnects on a 3 s backoff and the daemon takes a second or two to start.
        SetDefaultExpectTimeout(30_000);
    }

    [OneTimeTearDown]
    public async Task CloseBrowser() => await _chromium.DisposeAsync();

    [SetUp]
    public async Task SetUp()
    {
        _folder = Directory.CreateTempSubdirectory("pricedaemon-browser-").FullName;
        _console.Clear();
        // A context per test: its own localStorage, so no test sees another's board.
        _context = await _chromium.Browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = 1000, Height = 400 },
            Locale = "en-IN",
            TimezoneId = "Asia/Kolkata",
        });
        _page = await _context.NewPageAsync();
        Chromium.RecordConsole(_page, _console);
    }

    [TearDown]
    public async Task TearDown()
    {
        if (TestContext.CurrentContext.Result.Outcome.Status == NUnit.Framework.Interfaces.TestStatus.Failed)
        {
            TestContext.Out.WriteLine("browser console:");
            lock (_console)
            {
                _console.ForEach(TestContext.Out.WriteLine);
            }

            await SaveScreenshotAsync("failure.png", "the page when the test failed");
        }

        await _context.CloseAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public async Task Board_ShowsLive_AndPricesChange()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder, _fastFeed);
        await _page.GotoAsync(daemon.BaseUri.ToString());

        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Live");
        await Expect(_page.Locator("#banner")).ToBeHiddenAsync();
        await Expect(_page.Locator("#board tbody tr")).ToHaveCountAsync(5);
        await Expect(Row(Reliance).Locator("td.symbol")).ToHaveTextAsync("RELIANCE");
        await Expect(Row(Reliance).Locator("td.name")).ToHaveTextAsync("Reliance Industries");

        var first = await PriceAsync(Reliance);
        await Expect(Row(Reliance).Locator("td.price")).Not.ToHaveAttributeAsync("data-value", first.ToString(CultureInfo.InvariantCulture));
        await Expect(Row(Reliance)).ToHaveAttributeAsync("data-stale", "false");
        await Expect(Row(Reliance).Locator("td.change")).ToHaveTextAsync(new Regex(@"^[+-]?\d+\.\d\d%$"));

        // A sparkline with some history makes the screenshot worth looking at.
        await _page.WaitForFunctionAsync(
            "() => [...document.querySelectorAll('td.spark polyline')].every(p => p.getAttribute('points').split(' ').length >= 15)",
            null,
            new PageWaitForFunctionOptions { Timeout = 30_000 });
        UpdateDocsPicture(await SaveScreenshotAsync("board.png", "the live board"), "board.png");
    }

    [Test]
    public async Task SearchBox_AddsAnInstrumentRowThatUpdates_AndRemoveDropsIt()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder, _fastFeed);
        await _page.GotoAsync(daemon.BaseUri.ToString());
        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Live");

        await _page.Locator("#search-input").FillAsync("wip");
        var result = _page.Locator($"#search-results button[data-key='{Wipro}']");
        await Expect(result).ToContainTextAsync("WIPRO");
        await result.ClickAsync();

        await Expect(_page.Locator("#board tbody tr")).ToHaveCountAsync(6);
        await Expect(Row(Wipro).Locator("td.symbol")).ToHaveTextAsync("WIPRO");
        await Expect(Row(Wipro).Locator("td.price")).ToHaveAttributeAsync("data-value", new Regex(@"^\d"));
        var first = await PriceAsync(Wipro);
        await Expect(Row(Wipro).Locator("td.price")).Not.ToHaveAttributeAsync("data-value", first.ToString(CultureInfo.InvariantCulture));

        await Row(Tcs).Locator("button.remove").ClickAsync();
        await Expect(Row(Tcs)).ToHaveCountAsync(0);

        // The list is the user's: it survives a reload.
        await _page.ReloadAsync();
        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Live");
        await Expect(Row(Wipro)).ToHaveCountAsync(1);
        await Expect(Row(Tcs)).ToHaveCountAsync(0);
    }

    [Test]
    public async Task DaemonRestart_ShowsReconnectingWithStalePrices_ThenLiveAgainWithoutReload()
    {
        var daemon = await DaemonProcess.StartAsync(_folder, _fastFeed);
        var port = daemon.BaseUri.Port;
        try
        {
            await _page.GotoAsync(daemon.BaseUri.ToString());
            await Expect(_page.Locator("#connection")).ToHaveTextAsync("Live");
            await Expect(Row(Reliance).Locator("td.price")).ToHaveAttributeAsync("data-value", new Regex(@"^\d"));
            await _page.EvaluateAsync("() => { window.sameDocument = true; }");

            daemon.Signal(DaemonProcess.SigTerm);
            Assert.That(await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15)), Is.Zero);
        }
        finally
        {
            await daemon.DisposeAsync();
        }

        var banner = _page.Locator("#banner");
        await Expect(banner).ToBeVisibleAsync();
        await Expect(banner).ToContainTextAsync("Reconnecting…");
        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Reconnecting…");
        await Expect(_page.Locator("#board tbody tr")).ToHaveCountAsync(5);
        foreach (var row in await _page.Locator("#board tbody tr").AllAsync())
        {
            await Expect(row).ToHaveAttributeAsync("data-stale", "true");
            await Expect(row).ToHaveClassAsync(new Regex(@"\bstale\b"));
            await Expect(row.Locator("td.price")).ToHaveTextAsync(new Regex(@"^[\d,]+\.\d\d$"));
        }

        var lastShown = await PriceAsync(Reliance);
        await SaveScreenshotAsync("board-reconnecting.png", "the board while the daemon is down");

        // The same address again, as a restarted service would have; the page is not reloaded.
        await using var again = await DaemonProcess.StartAsync(_folder, [.. _fastFeed, "--urls", $"http://127.0.0.1:{port}"]);
        Assert.That(again.BaseUri.Port, Is.EqualTo(port));

        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Live");
        await Expect(banner).ToBeHiddenAsync();
        await Expect(Row(Reliance).Locator("td.price")).Not.ToHaveAttributeAsync("data-value", lastShown.ToString(CultureInfo.InvariantCulture));
        await Expect(Row(Reliance)).ToHaveAttributeAsync("data-stale", "false");
        foreach (var row in await _page.Locator("#board tbody tr").AllAsync())
        {
            await Expect(row).ToHaveAttributeAsync("data-stale", "false");
        }

        Assert.That(await _page.EvaluateAsync<bool>("() => window.sameDocument === true"), Is.True, "the page was reloaded");
    }

    [Test]
    public async Task Board_ShowsAnnouncementsAsABanner_AndTheUsersNotificationsAsToasts_ThenAcksThem()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder, [.. Push.Publisher.Args(), .. _fastFeed]);
        using var http = daemon.Http();
        var token = Security.Jwts.Valid("alice", DateTimeOffset.UtcNow);
        await _page.GotoAsync($"{daemon.BaseUri}?token={Uri.EscapeDataString(token)}");
        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Live");

        var (status, _) = await Push.Publisher.AnnounceAsync(http, "maint-1", "warning", "Trading halts at 15:30 for maintenance", DateTimeOffset.UtcNow.AddHours(1));
        Assert.That(status, Is.EqualTo(System.Net.HttpStatusCode.Accepted));
        var announcement = _page.Locator(".announcement[data-id='maint-1']");
        await Expect(announcement).ToBeVisibleAsync();
        await Expect(announcement).ToHaveAttributeAsync("data-level", "warning");
        await Expect(announcement).ToContainTextAsync("Trading halts at 15:30 for maintenance");

        await Push.Publisher.NotifyAsync(http, "alice", "trade-8812", "trade", """{"symbol":"RELIANCE","qty":10,"price":2451.5}""");
        var toast = _page.Locator(".toast[data-id='trade-8812']");
        await Expect(toast).ToBeVisibleAsync();
        await Expect(toast).ToContainTextAsync("trade");
        await Expect(toast).ToContainTextAsync("symbol: RELIANCE");
        UpdateDocsPicture(await SaveScreenshotAsync("board-pushes.png", "an announcement banner and a notification toast"), "board-pushes.png");

        // Shown, so acked by the page: the daemon counts it and keeps no copy to replay.
        await Eventually.ValueAsync(
            async () => (await http.GetStringAsync(new Uri("/metrics", UriKind.Relative))).Contains("pricedaemon_notifications_acked_total 1\n", StringComparison.Ordinal) ? new object() : null,
            "the page to ack the notification it showed");

        // Dismissed, and still dismissed after a reload (remembered per id), while the daemon still sends it.
        await announcement.Locator("button.dismiss").ClickAsync();
        await Expect(announcement).ToBeHiddenAsync();
        await _page.ReloadAsync();
        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Live");
        await Push.Publisher.AnnounceAsync(http, "maint-2", "critical", "Exchange feed down", DateTimeOffset.UtcNow.AddHours(1));
        await Expect(_page.Locator(".announcement[data-id='maint-2']")).ToHaveAttributeAsync("data-level", "critical");
        await Expect(_page.Locator(".announcement[data-id='maint-1']")).ToHaveCountAsync(0);
    }

    [Test]
    public async Task Board_BellSetsAnAlert_WhichFiresAsAToast_AndListsAsFired()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder, [.. Push.Publisher.Args(), .. _fastFeed]);
        var token = Security.Jwts.Valid("alice", DateTimeOffset.UtcNow);
        await _page.GotoAsync($"{daemon.BaseUri}?token={Uri.EscapeDataString(token)}");
        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Live");
        await Expect(Row(Reliance).Locator("td.price")).ToHaveTextAsync(new Regex(@"\d"));

        // Below a price far over the market: the next tick of RELIANCE fires it.
        await Row(Reliance).Locator("button.bell").ClickAsync();
        await Expect(_page.Locator("#alert-symbol")).ToHaveTextAsync("RELIANCE");
        await _page.Locator("#alert-condition").SelectOptionAsync("below");
        await _page.Locator("#alert-price").FillAsync("99999");
        await _page.Locator("#alert-note").FillAsync("bell test");
        await _page.Locator("#alert-editor button[type=submit]").ClickAsync();

        var toast = _page.Locator(".toast", new PageLocatorOptions { HasText = "price alert" });
        await Expect(toast).ToBeVisibleAsync();
        await Expect(toast).ToContainTextAsync("RELIANCE at or below");
        await Expect(toast).ToContainTextAsync("bell test");
        await Expect(_page.Locator("#alert-editor")).ToBeHiddenAsync();
        var fired = _page.Locator("#alerts-list li[data-state='fired']");
        await Expect(fired).ToHaveCountAsync(1);
        await Expect(fired).ToContainTextAsync("fired at");
        var screenshot = await SaveScreenshotAsync("board-alerts.png", "a fired price alert: its toast and the user's alert list");
        if (Environment.GetEnvironmentVariable("PRICEDAEMON_UPDATE_DOCS") == "1")
        {
            File.Copy(screenshot, Path.Combine(RepositoryRoot(), "docs", "board-alerts.png"), overwrite: true);
        }

        // Deleted from the list: gone from the daemon too.
        await fired.Locator("button.remove").ClickAsync();
        await Expect(_page.Locator("#alerts-list li")).ToHaveCountAsync(0);
        using var http = daemon.Http();
        Assert.That(await Alerts.AlertApi.ListAsync(http, "alice"), Is.Empty);
    }

    [Test]
    public async Task Board_FitsAPhoneScreen()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder, _fastFeed);
        await _page.SetViewportSizeAsync(390, 700);
        await _page.GotoAsync(daemon.BaseUri.ToString());
        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Live");
        await Expect(Row(Reliance).Locator("td.price")).ToHaveAttributeAsync("data-value", new Regex(@"^\d"));

        var overflow = await _page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - window.innerWidth");
        Assert.That(overflow, Is.LessThanOrEqualTo(0), "the page scrolls sideways at phone width");
        await Expect(Row(Reliance).Locator("td.price")).ToBeVisibleAsync();
        await Expect(Row(Reliance).Locator("td.change")).ToBeVisibleAsync();
        await Expect(Row(Reliance).Locator("button.remove")).ToBeVisibleAsync();
        await SaveScreenshotAsync("board-phone.png", "the board at phone width");

        // And while the daemon is gone: every price is stale (tagged) and the reconnect banner shows.
        daemon.Signal(DaemonProcess.SigTerm);
        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Reconnecting…");
        await Expect(Row(Reliance)).ToHaveAttributeAsync("data-stale", "true");
        overflow = await _page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - window.innerWidth");
        Assert.That(overflow, Is.LessThanOrEqualTo(0), "the page scrolls sideways at phone width with stale prices");
    }

    [Test]
    public async Task ClientLibrary_IsServedBesideTheBoard_AsAJavaScriptModule()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder, "--Feed:Source=None");
        using var http = daemon.Http();
        foreach (var path in new[] { "/price-socket.js", "/price-hooks.js", "/use-price-websocket.js", "/board.js" })
        {
            using var response = await http.GetAsync(path);
            Assert.That(response.IsSuccessStatusCode, Is.True, path);
            Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/javascript"), path);
        }

        // One source: what the daemon serves is the npm package's file itself.
        foreach (var file in new[] { "price-socket.js", "price-hooks.js", "use-price-websocket.js" })
        {
            var served = await http.GetStringAsync(new Uri("/" + file, UriKind.Relative));
            Assert.That(served, Is.EqualTo(await File.ReadAllTextAsync(Path.Combine(RepositoryRoot(), "clients", "js", "src", file))), file);
        }

        using var index = await http.GetAsync("/");
        Assert.That(await index.Content.ReadAsStringAsync(), Does.Contain("<script type=\"module\" src=\"board.js\">"));
        using var hidden = await http.GetAsync("/package.json");
        Assert.That((int)hidden.StatusCode, Is.EqualTo(404));
    }

    [Test]
    public async Task Board_ShowsTheLiveLatency_ExchangeToDaemon_AndDaemonToThePage()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder, _fastFeed);
        await _page.GotoAsync(daemon.BaseUri.ToString());
        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Live");
        var latency = _page.Locator("#latency");
        await Expect(latency).ToBeVisibleAsync();
        await Expect(latency.Locator("[data-leg='feed']")).ToHaveTextAsync(new Regex(@"^-?\d+(\.\d)? ms$"));
        await Expect(latency.Locator("[data-leg='page']")).ToHaveTextAsync(new Regex(@"^-?\d+(\.\d)? ms$"));
        var sample = await _page.EvaluateAsync<double[]>("() => [priceSocket.latency.exchangeToDaemonMs, priceSocket.latency.daemonToClientMs]");
        // Same machine, same clock: each leg is a real, small figure (the bound is only a sanity check).
        Assert.That(sample, Has.All.InRange(-5.0, 60_000.0));
    }

    [Test]
    public async Task Board_ShowsSlowConnection_WhenTheDaemonDownsamplesIt_AndLiveWhenItKeepsUpAgain()
    {
        // In process, with a fake clock and small send buffers: the test moves the daemon's time and is its feed.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var daemon = await TestDaemon.StartAsync(
            new Dictionary<string, string> { ["Limits:SlowConsumerWarnSeconds"] = "1", ["Limits:SlowConsumerRecoverSeconds"] = "2" },
            time,
            TestDaemon.SmallSendBuffers);
        daemon.Services.GetRequiredService<FeedStatus>().Report(FeedState.Connected, "test feed");
        var registry = daemon.Services.GetRequiredService<SessionRegistry>();
        await _page.GotoAsync(daemon.BaseUri.ToString());
        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Live");
        await Eventually.TrueAsync(() => registry.Sessions.SingleOrDefault()?.SubscriptionCount == 5, () => "the board's five rows subscribed");
        var session = registry.Sessions.Single();

        // The page is busy (its script runs on and on): Chromium stops reading the socket once its own buffers are full.
        // The script asks the daemon over synchronous HTTP, which keeps the socket's messages waiting, until INFY
        // trades at 1.23: the test's signal that it may stop (at most a minute).
        var busy = _page.EvaluateAsync("""
            () => {
              const end = Date.now() + 60000;
              while (Date.now() < end) {
                const request = new XMLHttpRequest();
                request.open('GET', '/api/prices/NSE_EQ%7CINE009A01021', false);
                request.send();
                if (/"last_price":1\.23[,}]/.test(request.responseText)) {
                  return;
                }
              }
            }
            """);
        var keys = new[] { Reliance, Tcs, "NSE_EQ|INE009A01021", "NSE_EQ|INE040A01034", "NSE_EQ|INE090A01021" };
        var price = 1000.0;
        var ticks = 0;
        async Task UntilStalledAsync()
        {
            for (var i = 0; i < 2_000_000 && !session.IsStalled(long.MaxValue, 0); i++, ticks++)
            {
                price = Math.Round(price + 0.05, 2);
                await daemon.TickAsync(keys[ticks % keys.Length], price, ticks);
                if (ticks % keys.Length == 0)
                {
                    await Task.Yield();
                }
            }

            Assert.That(session.IsStalled(long.MaxValue, 0), Is.True, "the page's socket never backed up");
        }

        // Behind as the daemon measures it: a write pending whenever its clock moves. The feed goes on until one is
        // pending before each second, not only before the first: the first pending write does not mean the page's
        // buffers are full (the kernel or Chromium's network process may take it a moment later), and a socket with
        // nothing left to send is not behind.
        for (var second = 0; second < 5 && !session.IsDownsampled; second++)
        {
            await UntilStalledAsync();
            await time.AdvanceToSweepAsync(registry);
        }

        Assert.That(session.IsDownsampled, Is.True, $"not downsampled while the page was not reading (closing {session.IsClosing}, stalled {session.IsStalled(long.MaxValue, 0)}, sessions {registry.Count}, same {ReferenceEquals(registry.Sessions.SingleOrDefault(), session)})");
        await daemon.TickAsync("NSE_EQ|INE009A01021", 1.23, 1);
        await busy;
        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Slow connection");
        await Expect(_page.Locator("#banner")).ToContainTextAsync("Slow connection: this page is not keeping up");
        await Expect(Row(Reliance).Locator("td.price")).ToHaveAttributeAsync("data-value", new Regex(@"^\d"));
        UpdateDocsPicture(await SaveScreenshotAsync("board-slow.png", "the board of a downsampled connection"), "board-slow.png");

        // The page reads again and keeps up: after the recover time the daemon says so, and the board is live.
        for (var second = 0; second < 10 && session.IsDownsampled; second++)
        {
            await Eventually.TrueAsync(() => !session.IsStalled(long.MaxValue, 0), () => "the page is reading");
            await time.AdvanceToSweepAsync(registry);
        }

        Assert.That(session.IsDownsampled, Is.False, "not back to full rate");
        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Live");
        await Expect(_page.Locator("#banner")).ToBeHiddenAsync();
    }

    private ILocator Row(string key) => _page.Locator($"#board tbody tr[data-key='{key}']");

    private async Task<double> PriceAsync(string key)
    {
        // The row is drawn before its first price arrives: wait for one instead of reading an empty cell.
        await Expect(Row(key).Locator("td.price")).ToHaveAttributeAsync("data-value", new Regex(@"^\d"));
        var value = await Row(key).Locator("td.price").GetAttributeAsync("data-value");
        return double.Parse(value ?? throw new AssertionException($"no price shown for {key}"), CultureInfo.InvariantCulture);
    }

    private async Task<string> SaveScreenshotAsync(string name, string description)
    {
        var path = Path.Combine(TestContext.CurrentContext.WorkDirectory, $"{TestContext.CurrentContext.Test.MethodName}-{name}");
        await _page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true, Animations = ScreenshotAnimations.Disabled });
        TestContext.AddTestAttachment(path, description);
        return path;
    }

    /// <summary>The README's pictures in docs/ are refreshed only when asked, so a test run leaves the tree clean.</summary>
    private static void UpdateDocsPicture(string screenshot, string name)
    {
        if (Environment.GetEnvironmentVariable("PRICEDAEMON_UPDATE_DOCS") == "1")
        {
            File.Copy(screenshot, Path.Combine(Directory.CreateDirectory(Path.Combine(RepositoryRoot(), "docs")).FullName, name), overwrite: true);
        }
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (!File.Exists(Path.Combine(dir.FullName, "PriceDaemon.sln")))
        {
            dir = dir.Parent ?? throw new DirectoryNotFoundException("PriceDaemon.sln not found above the test directory");
        }

        return dir.FullName;
    }
}
