using System.Text.Json;
using Microsoft.Playwright;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Browser;

/// <summary>
/// The React hooks of @pricedaemon/client on real React 19 (react and react-dom from npm, bundled by esbuild
/// in development mode, so StrictMode double-mounts) in headless Chromium, against the real daemon: the test
/// app (clients/js/test-app) is served from the daemon's own origin and drives a live socket.
/// </summary>
public sealed partial class ReactHooksTests
{
    private static readonly string[] _keys = [.. Enumerable.Range(1, 24).Select(i => $"NSE_EQ|SYN{i:D7}")];

    private static readonly string[] _daemonArgs =
    [
        "--Feed:Simulated:MinIntervalMs=50", "--Feed:Simulated:MaxIntervalMs=150", "--Throttle:MinIntervalMs=0",
        "--Feed:Simulated:SyntheticInstruments=30", "--Limits:SubscriptionChangesPerWindow=1000",
    ];

    private Chromium _chromium = null!;
    private string _bundle = null!;
    private string _folder = null!;
    private IBrowserContext _context = null!;
    private IPage _page = null!;
    private readonly List<string> _console = [];

    [OneTimeSetUp]
    public async Task LaunchBrowserAndBuildApp()
    {
        _bundle = await JsPackage.BuildTestAppAsync("development");
        // A page fulfilled by a Playwright route has no address of its own, so Chromium's local network access
        // checks would treat it as public and block its socket to 127.0.0.1; the daemon's origin policy still applies.
        _chromium = await Chromium.LaunchAsync("--disable-features=LocalNetworkAccessChecks");
    }

    [OneTimeTearDown]
    public async Task CloseBrowser() => await _chromium.DisposeAsync();

    [SetUp]
    public async Task SetUp()
    {
        _folder = Directory.CreateTempSubdirectory("pricedaemon-react-").FullName;
        _console.Clear();
        _context = await _chromium.Browser.NewContextAsync();
        _page = await _context.NewPageAsync();
        Chromium.RecordConsole(_page, _console);
    }

    [TearDown]
    public async Task TearDown()
    {
        if (TestContext.CurrentContext.Result.Outcome.Status == NUnit.Framework.Interfaces.TestStatus.Failed)
        {
            lock (_console)
            {
                _console.ForEach(TestContext.Out.WriteLine);
            }
        }

        await _context.CloseAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public async Task UsePrice_DoesNotRerender_WhenOtherKeysTick()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder, _daemonArgs);
        await OpenAppAsync(daemon);
        var one = _keys[0];
        await MountAsync(
            strict: false,
            new { component = "Quote", props = new { id = "one", instrument = one } },
            new { component = "NewGuidePage", props = new { id = "guide", keys = new[] { one } } },
            new { component = "OldGuidePage", props = new { id = "old", keys = new[] { one } } },
            new { component = "QuoteBoard", props = new { keys = _keys[1..] } });

        // Wait for plenty of ticks of the other keys, and a few of this one.
        await _page.WaitForFunctionAsync(
            $"k => {{ const s = window.testApp.state; return s.tickCount - (s.ticks[k] ?? 0) >= 300 && (s.ticks[k] ?? 0) >= 3; }}",
            one,
            new PageWaitForFunctionOptions { Timeout = 60_000 });
        await _page.EvaluateAsync("() => window.testApp.unmount()");
        var state = await StateAsync();
        var ticksOfOne = state.GetProperty("ticks").GetProperty(one).GetInt32();
        var otherTicks = state.GetProperty("tickCount").GetInt32() - ticksOfOne;
        var renders = state.GetProperty("renders");
        TestContext.Out.WriteLine($"ticks: {ticksOfOne} of {one}, {otherTicks} of the others; renders: {renders}");

        Assert.Multiple(() =>
        {
            // One render to mount, then one per change of its own price at most.
            Assert.That(renders.GetProperty("one").GetInt32(), Is.LessThanOrEqualTo(ticksOfOne + 1));
            Assert.That(renders.GetProperty("one").GetInt32(), Is.EqualTo(state.GetProperty("distinct").GetProperty("one").GetInt32()), "a render showed no new price");
            // The guide's shape, ported: also its mount, its own subscribe, the connection status, then its key.
            Assert.That(renders.GetProperty("guide").GetInt32(), Is.LessThanOrEqualTo(ticksOfOne + 4));
            // The first hook, on the same socket and key, rendered for ticks of other keys too (React batches some
            // of them into one render, so not once per tick): more renders than its own key explains.
            Assert.That(renders.GetProperty("old").GetInt32(), Is.GreaterThan(ticksOfOne + 4));
        });
    }

    [Test]
    public async Task Hooks_SubscribeOnceAndReleaseOnUnmount_UnderStrictMode()
    {
        await using var daemon = await DaemonProcess.StartAsync(_folder, _daemonArgs);
        await OpenAppAsync(daemon);
        Assert.That(await _page.EvaluateAsync<bool>("() => window.testApp.devMode"), Is.True, "StrictMode double-mounts only in a development build");
        var held = _keys[..4];
        await MountAsync(
            strict: true,
            new { component = "Watchlist", props = new { id = "list", keys = new[] { held[0], held[1] } } },
            new { component = "Quote", props = new { id = "quote", instrument = held[2] } },
            new { component = "NewGuidePage", props = new { id = "guide", keys = new[] { held[3] } } });

        // Live prices from the daemon reach every component.
        await _page.WaitForFunctionAsync(
            "() => [...document.querySelectorAll('[data-id] [data-price], [data-id][data-price]')].length >= 3"
            + " && [...document.querySelectorAll('[data-price]')].every(e => e.dataset.price !== '')"
            + " && [...document.querySelectorAll('[data-id=guide] td:nth-child(2)')].every(e => e.textContent !== '')",
            null,
            new PageWaitForFunctionOptions { Timeout = 30_000 });
        var mounted = await StateAsync();
        var sent = mounted.GetProperty("sent").EnumerateArray().ToList();
        var acks = mounted.GetProperty("acks").EnumerateArray().ToList();
        var refCounts = await _page.EvaluateAsync<int[]>("keys => keys.map(k => window.testApp.socket.refCount(k))", held);
        TestContext.Out.WriteLine($"sent: {JsonSerializer.Serialize(sent)}");

        Assert.Multiple(() =>
        {
            // StrictMode's mount, unmount and mount again: one subscribe for all four keys, no unsubscribe.
            Assert.That(sent.Select(m => m.GetProperty("action").GetString()), Is.EqualTo(new[] { "subscribe" }));
            Assert.That(sent[0].GetProperty("instruments").EnumerateArray().Select(k => k.GetString()), Is.EquivalentTo(held));
            Assert.That(refCounts, Is.EqualTo(new[] { 1, 1, 1, 1 }), "a double mount left a reference behind");
            Assert.That(acks.Last().GetProperty("instruments").EnumerateArray().Select(k => k.GetString()), Is.EquivalentTo(held));
        });

        await _page.EvaluateAsync("() => window.testApp.unmount()");
        // The daemon's ack of the unsubscribe shows the connection holds nothing any more.
        var ack = await _page.WaitForFunctionAsync(
            "() => window.testApp.state.acks.find(a => a.action === 'unsubscribe')",
            null,
            new PageWaitForFunctionOptions { Timeout = 30_000 });
        var released = await ack.JsonValueAsync<JsonElement>();
        var after = await StateAsync();
        Assert.Multiple(() =>
        {
            Assert.That(released.GetProperty("instruments").GetArrayLength(), Is.Zero, released.GetRawText());
            Assert.That(after.GetProperty("sent").GetArrayLength(), Is.EqualTo(2), "one unsubscribe for the whole tree");
        });
        Assert.That(await _page.EvaluateAsync<int>("() => window.testApp.socket.subscriptions.length"), Is.Zero);
    }

    private Task OpenAppAsync(DaemonProcess daemon) => OpenAppAsync(daemon.BaseUri);

    /// <param name="query">The page address's query: <c>?token=...</c> signs its socket in.</param>
    private async Task OpenAppAsync(Uri daemon, string query = "")
    {
        // The app is served from the daemon's origin (the daemon's origin policy admits its own pages).
        var appUrl = new Uri(daemon, "react-test/index.html" + query).ToString();
        var html = await File.ReadAllTextAsync(Path.Combine(JsPackage.Directory, "test-app", "index.html"));
        await _page.RouteAsync(new Uri(daemon, "react-test/**").ToString(), route => route.Request.Url.EndsWith("/app.js", StringComparison.Ordinal)
            ? route.FulfillAsync(new RouteFulfillOptions { ContentType = "text/javascript", Body = _bundle })
            : route.FulfillAsync(new RouteFulfillOptions { ContentType = "text/html", Body = html }));
        await _page.GotoAsync(appUrl);
        await _page.WaitForFunctionAsync("() => window.testApp?.socket.status === 'connected'", null, new PageWaitForFunctionOptions { Timeout = 30_000 });
    }

    private Task MountAsync(bool strict, params object[] items) =>
        _page.EvaluateAsync("([items, strict]) => window.testApp.mount(items, { strict })", new object[] { items, strict });

    private async Task<JsonElement> StateAsync() =>
        await _page.EvaluateAsync<JsonElement>("() => JSON.parse(JSON.stringify(window.testApp.state))");
}
