using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using PriceDaemon.Alerts;
using PriceDaemon.Feeds.Replay;
using PriceDaemon.Pipeline;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Alerts;

/// <summary>Unusual-volume alerts over a real socket: a burst against a steady baseline fires, a steady day does not.</summary>
[TestFixture]
public sealed class VolumeAlertTests
{
    private const string A = "NSE_EQ|INE002A01018";
    private const string B = "NSE_EQ|INE467B01029";

    // A minute boundary in exchange time, so each step below lands in the minute it names.
    private static readonly long Start = new DateTimeOffset(2026, 1, 19, 3, 46, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();

    private static readonly Dictionary<string, string> Settings = new()
    {
        ["Alerts:Volume:MinShares"] = "5000",
        ["Alerts:Volume:MinBaselineMinutes"] = "5",
        ["Alerts:Volume:Multiple"] = "3",
    };

    [Test]
    public async Task ABurst_AgainstTheMedianOfRecentMinutes_SendsOneVolumeAlert()
    {
        await using var daemon = await TestDaemon.StartAsync(Settings);
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SendAsync($$"""{"action":"subscribe","channel":"volume_alerts","instruments":["{{A}}"]}""");
        var ack = await client.NextAsync("subscribed");
        Assert.That(ack.GetProperty("channel").GetString(), Is.EqualTo("volume_alerts"));
        Assert.That(ack.GetProperty("instruments").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { A }));
        await client.SubscribeAsync(A);

        // Six steady minutes of 2,000 shares (two ticks of 1,000), then 20,000 in the seventh: ten times the median.
        // B bursts too, but this socket asked for A only.
        var volume = 100_000L;
        for (var minute = 0; minute < 6; minute++)
        {
            for (var i = 1; i <= 2; i++)
            {
                volume += 1000;
                await daemon.TickAsync(A, 1000 + minute, volume, Start + (minute * 60_000) + (i * 1000));
                await daemon.TickAsync(B, 2000 + minute, volume, Start + (minute * 60_000) + (i * 1000));
            }
        }

        await daemon.TickAsync(B, 2100, volume + 20_000, Start + (6 * 60_000) + 1000);
        await daemon.TickAsync(A, 1100, volume + 20_000, Start + (6 * 60_000) + 1000);
        await daemon.TickAsync(A, 1101, volume + 40_000, Start + (6 * 60_000) + 2000); // inside the cooldown: no second alert

        var alert = await client.NextAsync("volume_alert");
        Assert.That(alert.GetProperty("instrument_key").GetString(), Is.EqualTo(A));
        var data = alert.GetProperty("data");
        Assert.That(data.GetProperty("volume_1m").GetInt64(), Is.EqualTo(20_000));
        Assert.That(data.GetProperty("baseline").GetDouble(), Is.EqualTo(2000));
        Assert.That(data.GetProperty("ratio").GetDouble(), Is.EqualTo(10));

        await Eventually.TrueAsync(() => client.LastPriceOf(A) == 1101, "every tick seen");
        var watch = daemon.Services.GetRequiredService<VolumeWatch>();
        Assert.That(watch.Fired, Is.EqualTo(2), "one for A (cooled down after), one for B");
        await client.SendAsync("""{"action":"unsubscribe","channel":"volume_alerts"}""");
        Assert.That((await client.NextAsync("subscribed")).GetProperty("instruments").GetArrayLength(), Is.Zero);
    }

    [Test]
    public async Task ASteadyDay_SendsNoVolumeAlert()
    {
        await using var daemon = await TestDaemon.StartAsync(Settings);
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SendAsync("""{"action":"subscribe","channel":"volume_alerts","instruments":["*"]}""");
        Assert.That((await client.NextAsync("subscribed")).GetProperty("instruments").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "*" }));
        await client.SubscribeAsync(A);

        // Thirty minutes of 9,000-11,000 shares a minute: well over MinShares, never three times the median.
        var volume = 100_000L;
        var random = new Random(7);
        double last = 0;
        for (var minute = 0; minute < 30; minute++)
        {
            for (var i = 1; i <= 3; i++)
            {
                volume += random.Next(3000, 3667);
                last = 1000 + minute + (i / 10.0);
                await daemon.TickAsync(A, last, volume, Start + (minute * 60_000) + (i * 1000));
            }
        }

        // The throttle emits each tick (no window in tests), after the observers saw it: the last price means all were seen.
        await client.NextPriceAsync(A, last);
        Assert.That(daemon.Services.GetRequiredService<VolumeWatch>().Fired, Is.Zero);
        Assert.That(client.PricesOf(A), Is.Not.Empty);
    }

    [TestCase(true, 1)]
    [TestCase(false, 0)]
    public async Task AReplayedFile_FiresOnItsBurst_AndNotOnASteadyDay(bool burst, long expected)
    {
        // Twelve minutes of 2,000-2,600 shares a minute in four ticks; with the burst, 30,000 more in minute ten.
        var folder = Directory.CreateTempSubdirectory("pricedaemon-volume-").FullName;
        try
        {
            var lines = new List<string> { TickFile.CsvHeader };
            var volume = 500_000L;
            var random = new Random(3);
            for (var minute = 0; minute < 12; minute++)
            {
                for (var i = 0; i < 4; i++)
                {
                    volume += random.Next(500, 650) + (burst && minute == 10 && i == 2 ? 30_000 : 0);
                    var time = DateTimeOffset.FromUnixTimeMilliseconds(Start + (minute * 60_000) + (i * 10_000) + 1);
                    lines.Add(string.Create(CultureInfo.InvariantCulture, $"{A},{time:yyyy-MM-ddTHH:mm:ss.fffZ},{1000 + i},{volume}"));
                }
            }

            var file = Path.Combine(folder, "day.csv");
            await File.WriteAllLinesAsync(file, lines);
            await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string>(Settings)
            {
                ["Feed:Source"] = "Replay", ["Feed:Replay:Path"] = file, ["Feed:Replay:Speed"] = "0",
            });
            var metrics = daemon.Services.GetRequiredService<PipelineMetrics>();
            await Eventually.TrueAsync(() => Volatile.Read(ref metrics.TicksReceived) == lines.Count - 1, "every tick of the file through the throttle");
            Assert.That(daemon.Services.GetRequiredService<VolumeWatch>().Fired, Is.EqualTo(expected));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
