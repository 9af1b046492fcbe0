using System.Text.Json;
using Microsoft.Playwright;
using PriceDaemon.Tests.Alerts;
using PriceDaemon.Tests.Push;
using PriceDaemon.Tests.Security;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Browser;

/// <summary>
/// useAlerts and useVolumeAlerts on real React in Chromium, against the real daemon in this process (the test is its
/// feed): a signed-in user's list, a created alert, one fired by a tick, a volume burst, and concurrent requests that
/// each settle with their own answer.
/// </summary>
public sealed partial class ReactHooksTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";
    private const string Infosys = "NSE_EQ|INE009A01021";

    [Test]
    public async Task AlertHooks_RenderTheList_CreatedAndFiredAlerts_AndAVolumeBurst()
    {
        await using var daemon = await TestDaemon.StartAsync(Publisher.Settings(
            ("Alerts:MaxPerUser", "2"), ("Alerts:Volume:MinShares", "5000"), ("Alerts:Volume:MinBaselineMinutes", "5"), ("Alerts:Volume:Multiple", "3")));
        using var http = daemon.Http();
        var listed = await AlertApi.CreateAsync(http, "alice", Reliance, "above", 1500, note: "take profit");
        await OpenAppAsync(daemon.BaseUri, "?token=" + Uri.EscapeDataString(Jwts.Valid("alice", DateTimeOffset.UtcNow)));
        await MountAsync(
            strict: true,
            new { component = "AlertList", props = new { id = "alerts" } },
            new { component = "VolumeFeed", props = new { id = "volume", keys = new[] { Infosys } } });

        // The user's list, as the daemon has it, rendered; StrictMode's double mount asked for it once, and for the
        // volume channel once.
        await WaitForAsync($"() => document.querySelector('[data-id=alerts] [data-alert-id=\"{listed}\"]')?.dataset.state === 'armed'");
        var sent = (await StateAsync()).GetProperty("sent").EnumerateArray()
            .Select(m => m.GetProperty("action").GetString() + (m.TryGetProperty("channel", out var c) ? $" {c.GetString()}" : "")).ToList();
        Assert.That(sent, Is.EqualTo(new[] { "alert_list", "subscribe volume_alerts" }), string.Join(", ", sent));

        // Two creates at once; the second is over the limit of 2. The refusal comes at once, the first's answer only once
        // the alert is stored: answers matched by order would give each call the other's.
        var outcomes = await _page.EvaluateAsync<JsonElement>(
            """
            async (key) => {
              const { createAlert } = window.testApp.hooks;
              const settled = await Promise.allSettled([
                createAlert({ instrument_key: key, condition: 'below', price: 10, note: 'first' }),
                createAlert({ instrument_key: key, condition: 'below', price: 20, note: 'second' }),
              ]);
              return settled.map((r) => r.status === 'fulfilled' ? { note: r.value.note, state: r.value.state } : { code: r.reason.code });
            }
            """,
            Reliance);
        TestContext.Out.WriteLine($"answers in the order they came: {(await StateAsync()).GetProperty("alertFrames")}");
        Assert.Multiple(() =>
        {
            Assert.That(outcomes[0].GetProperty("note").GetString(), Is.EqualTo("first"), outcomes.ToString());
            Assert.That(outcomes[0].GetProperty("state").GetString(), Is.EqualTo("armed"));
            Assert.That(outcomes[1].GetProperty("code").GetString(), Is.EqualTo("alert_limit"), outcomes.ToString());
        });
        await WaitForAsync("() => document.querySelectorAll('[data-id=alerts] li').length === 2");

        // A tick past the line fires the listed alert: its notification turns the row to fired, at that price.
        await daemon.TickAsync(Reliance, 1400);
        await daemon.TickAsync(Reliance, 1501.5);
        await WaitForAsync($"() => document.querySelector('[data-alert-id=\"{listed}\"]')?.dataset.state === 'fired'");
        Assert.That(await _page.GetAttributeAsync($"[data-alert-id=\"{listed}\"]", "data-fired-price"), Is.EqualTo("1501.5"));

        // Six steady minutes of 2,000 shares, then 20,000 in the seventh: ten times the median. Another instrument bursts
        // too, unheard: the component asked for one.
        var start = new DateTimeOffset(2026, 1, 19, 3, 46, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        var volume = 100_000L;
        for (var minute = 0; minute < 6; minute++)
        {
            for (var i = 1; i <= 2; i++)
            {
                volume += 1000;
                await daemon.TickAsync(Infosys, 1500 + minute, volume, start + (minute * 60_000) + (i * 1000));
                await daemon.TickAsync(Tcs, 3000 + minute, volume, start + (minute * 60_000) + (i * 1000));
            }
        }

        await daemon.TickAsync(Tcs, 3100, volume + 20_000, start + (6 * 60_000) + 1000);
        await daemon.TickAsync(Infosys, 1600, volume + 20_000, start + (6 * 60_000) + 1000);
        await WaitForAsync("() => document.querySelectorAll('[data-id=volume] li').length === 1");
        Assert.That(await _page.GetAttributeAsync("[data-id=volume] li", "data-key"), Is.EqualTo(Infosys));
        Assert.That(await _page.GetAttributeAsync("[data-id=volume] li", "data-ratio"), Is.EqualTo("10"));

        // A request the daemon has not answered when the socket closes rejects, whatever the daemon does with it after.
        var closed = await _page.EvaluateAsync<string>(
            """
            async (key) => {
              const { socket } = window.testApp;
              const pending = socket.listAlerts();
              socket.close();
              return pending.then(() => 'resolved', (error) => error.code);
            }
            """,
            Reliance);
        Assert.That(closed, Is.EqualTo("connection_closed"));
    }

    private const string Tcs = "NSE_EQ|INE467B01029";

    private Task WaitForAsync(string predicate) =>
        _page.WaitForFunctionAsync(predicate, null, new PageWaitForFunctionOptions { Timeout = 30_000 });
}
