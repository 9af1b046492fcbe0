using System.Globalization;
using PriceDaemon.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace PriceDaemon.Tests.Browser;

/// <summary>The board hears the volume_alerts channel: a burst on a shown instrument becomes a toast.</summary>
public sealed partial class BoardTests
{
    [Test]
    public async Task AVolumeBurstOnAShownInstrument_ShowsAnUnusualVolumeToast()
    {
        // Twelve minutes of about 2,300 shares a minute, then 30,000 more inside minute ten, replayed 30 times faster
        // (24 s): the page is connected well before the burst, which is an event for whoever is connected then.
        var file = Path.Combine(_folder, "burst.csv");
        var start = DateTimeOffset.UtcNow.AddMinutes(-30);
        var lines = new List<string> { "instrument_key,timestamp,last_price,volume" };
        var volume = 500_000L;
        var random = new Random(3);
        for (var minute = 0; minute < 12; minute++)
        {
            for (var i = 0; i < 4; i++)
            {
                volume += random.Next(500, 650) + (minute == 10 && i == 2 ? 30_000 : 0);
                var at = start.AddMinutes(minute).AddSeconds((i * 10) + 1).UtcDateTime;
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"{Reliance},{at:yyyy-MM-dd'T'HH:mm:ss'Z'},{1450 + i},{volume}"));
            }
        }

        await File.WriteAllLinesAsync(file, lines);
        await using var daemon = await DaemonProcess.StartAsync(_folder, "--Feed:Source=Replay", $"--Feed:Replay:Path={file}", "--Feed:Replay:Speed=30");
        await _page.GotoAsync(daemon.BaseUri.ToString());
        await Expect(_page.Locator("#connection")).ToHaveTextAsync("Live");

        var toast = _page.Locator("#toasts .toast", new() { HasText = "unusual volume" });
        await Expect(toast).ToBeVisibleAsync(new() { Timeout = 60_000 });
        await Expect(toast.Locator(".detail")).ToContainTextAsync("RELIANCE");
        await Expect(toast.Locator(".detail")).ToContainTextAsync("× the usual");
    }
}
