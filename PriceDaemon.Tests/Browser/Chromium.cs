using Microsoft.Playwright;

namespace PriceDaemon.Tests.Browser;

/// <summary>
/// Debian's Chromium (<c>/usr/bin/chromium</c>, installed by test.sh) driven by Microsoft.Playwright. The
/// package carries its own node driver, and with <see cref="BrowserTypeLaunchOptions.ExecutablePath"/> set
/// it never looks for a browser of its own, so nothing is downloaded at build or test time. Playwright gives
/// each launch a new, empty <c>--user-data-dir</c> and deletes it on close.
/// </summary>
internal sealed class Chromium : IAsyncDisposable
{
    public const string ExecutablePath = "/usr/bin/chromium";

    // The network here is closed: nothing that phones home, nothing that waits for a GPU or a sandbox.
    private static readonly string[] _args =
    [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ];

    private readonly IPlaywright _playwright;

    private Chromium(IPlaywright playwright, IBrowser browser)
    {
        _playwright = playwright;
        Browser = browser;
    }

    public IBrowser Browser { get; }

    /// <param name="extraArgs">More Chromium switches, e.g. for a test that serves its page through a route.</param>
    public static async Task<Chromium> LaunchAsync(params string[] extraArgs)
    {
        // Missing Chromium is a failure with the fix in it, never a skip.
        if (!File.Exists(ExecutablePath))
        {
            throw new FileNotFoundException($"{ExecutablePath} is missing: apt-get install chromium (test.sh does)", ExecutablePath);
        }

        var playwright = await Playwright.CreateAsync();
        try
        {
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = ExecutablePath,
                Headless = true,
                Args = [.. _args, .. extraArgs],
                Timeout = 60_000,
            });
            return new Chromium(playwright, browser);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }

    /// <summary>Keeps the page's console lines and uncaught errors in <paramref name="into"/> (locked), for a failing test to print.</summary>
    public static void RecordConsole(IPage page, List<string> into)
    {
        page.Console += (_, message) =>
        {
            lock (into)
            {
                into.Add($"{message.Type}: {message.Text}");
            }
        };
        page.PageError += (_, error) =>
        {
            lock (into)
            {
                into.Add($"pageerror: {error}");
            }
        };
    }

    public async ValueTask DisposeAsync()
    {
        await Browser.CloseAsync();
        _playwright.Dispose();
    }
}
