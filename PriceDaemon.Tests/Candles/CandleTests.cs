using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Candles;
using PriceDaemon.Pipeline;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Candles;

/// <summary>
/// Candles from the real daemon: bars built from every tick of a replayed file (hand-computed OHLCV), the channel's
/// history, forming and closed frames over a real socket, the candle file across a restart, and the REST call.
/// Time is a <see cref="FakeTimeProvider"/>: the test moves the clock that throttles, passes and closes bars.
/// </summary>
[TestFixture]
public sealed class CandleTests
{
    private const string Key = "NSE_EQ|INE002A01018";
    private static readonly string EncodedKey = Uri.EscapeDataString(Key);

    // Monday 2026-11-30 in IST (+05:30): 09:15 IST is 03:45 UTC.
    private static long Ist(int hour, int minute, int second = 0) =>
        new DateTimeOffset(2026, 11, 30, hour, minute, second, TimeSpan.FromHours(5.5)).ToUnixTimeMilliseconds();

    private static string IsoUtc(int hour, int minute) =>
        new DateTimeOffset(2026, 11, 30, hour, minute, 0, TimeSpan.FromHours(5.5)).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'");

    private static FakeTimeProvider Clock() => new(new DateTimeOffset(2026, 11, 30, 4, 0, 0, TimeSpan.Zero));

    [Test]
    public async Task Bars_FromAReplayedFile_MatchHandComputedOhlcv_IncludingAHighTheThrottleMerged()
    {
        var folder = Directory.CreateTempSubdirectory("pricedaemon-candles-").FullName;
        try
        {
            var file = Path.Combine(folder, "day.csv");
            // instrument_key,timestamp,last_price,volume (cumulative day volume). Times IST.
            string[] lines =
            [
                "instrument_key,timestamp,last_price,volume",
                $"{Key},2026-11-30T09:10:00+05:30,98.0,900", // pre-open: no bar; its volume is the baseline
                $"{Key},2026-11-30T09:15:05+05:30,100.0,1000", // 1m 09:15 opens: traded 100
                $"{Key},2026-11-30T09:15:20+05:30,101.5,1200", // +200
                $"{Key},2026-11-30T09:15:40+05:30,103.0,1500", // +300, the high: merged by the 60 s throttle, never a price frame
                $"{Key},2026-11-30T09:15:50+05:30,99.5,1600", // +100, low and close of 09:15
                $"{Key},2026-11-30T09:16:10+05:30,99.0,2000", // 09:16 opens: +400
                $"{Key},2026-11-30T09:16:30+05:30,100.5,2100", // +100
                $"{Key},2026-11-30T09:20:00+05:30,101.0,2600", // 09:17-09:19 had no trade: no bars; 5m 09:15 closes
            ];
            // The ISO offsets are written as UTC for the tick file's parser.
            await File.WriteAllLinesAsync(file, lines.Select(l => l.Contains("+05:30") ? ToUtc(l) : l));

            var time = Clock();
            await using var daemon = await TestDaemon.StartAsync(
                new Dictionary<string, string>
                {
                    ["Feed:Source"] = "Replay",
                    ["Feed:Replay:Path"] = file,
                    ["Feed:Replay:Speed"] = "0",
                    ["Throttle:MinIntervalMs"] = "60000",
                },
                time);
            var metrics = daemon.Services.GetRequiredService<PipelineMetrics>();
            await Eventually.TrueAsync(() => Volatile.Read(ref metrics.TicksReceived) == 8, "the file replayed");

            using var http = daemon.Http();
            var oneMinute = await AdvanceUntilAsync(time, async () =>
                await GetCandlesAsync(http, "1m") is { } bars && bars.Count == 3 ? bars : null);

            // One 60 s window: the first tick was emitted, the second opened the pending update and the other six were
            // merged into it. 103.0 never reached a price frame; the bars have it.
            Assert.That(Volatile.Read(ref metrics.TicksCoalesced), Is.EqualTo(6));
            Assert.That(daemon.Services.GetRequiredService<PriceCache>().TryGetValues(daemon.Id(Key), out var cached) ? cached.LastPrice : 0, Is.EqualTo(98.0));

            Assert.That(oneMinute.Select(Ohlcv), Is.EqualTo(new[]
            {
                (IsoUtc(9, 15), 100.0, 103.0, 99.5, 99.5, 700L, (bool?)null),
                (IsoUtc(9, 16), 99.0, 100.5, 99.0, 100.5, 500L, null),
                (IsoUtc(9, 20), 101.0, 101.0, 101.0, 101.0, 500L, false), // forming, last
            }));
            Assert.That((await GetCandlesAsync(http, "5m"))!.Select(Ohlcv), Is.EqualTo(new[]
            {
                (IsoUtc(9, 15), 100.0, 103.0, 99.0, 100.5, 1200L, (bool?)null),
                (IsoUtc(9, 20), 101.0, 101.0, 101.0, 101.0, 500L, false),
            }));
            Assert.That((await GetCandlesAsync(http, "15m"))!.Select(Ohlcv), Is.EqualTo(new[] { (IsoUtc(9, 15), 100.0, 103.0, 99.0, 101.0, 1700L, (bool?)false) }));
            Assert.That((await GetCandlesAsync(http, "1h"))!.Select(Ohlcv), Is.EqualTo(new[] { (IsoUtc(9, 15), 100.0, 103.0, 99.0, 101.0, 1700L, (bool?)false) }));
            Assert.That((await GetCandlesAsync(http, "1d"))!.Select(Ohlcv), Is.EqualTo(new[] { (IsoUtc(9, 15), 100.0, 103.0, 99.0, 101.0, 1700L, (bool?)false) }));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public async Task Channel_GivesHistory_ThenTheFormingBar_ThenTheClosedBar_WhenItsIntervalEnds()
    {
        var time = Clock();
        await using var daemon = await TestDaemon.StartAsync(time: time);
        await daemon.TickAsync(Key, 100.0, 1000, Ist(9, 14, 50)); // pre-open: the baseline
        await daemon.TickAsync(Key, 100.0, 1100, Ist(9, 15, 1));
        await daemon.TickAsync(Key, 102.0, 1300, Ist(9, 15, 30));
        await daemon.TickAsync(Key, 101.0, 1350, Ist(9, 16, 2)); // closes 09:15 by a trade
        using var http = daemon.Http();
        await AdvanceUntilAsync(time, async () => await GetCandlesAsync(http, "1m") is { Count: 2 } bars ? bars : null);

        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SendAsync($$"""{"action":"subscribe","channel":"candles","interval":"1m","history":200,"instruments":["{{Key}}","NSE_EQ|NOPE"]}""");
        var ack = await client.NextAsync("subscribed");
        Assert.That(ack.GetProperty("channel").GetString(), Is.EqualTo("candles"));
        Assert.That(ack.GetProperty("interval").GetString(), Is.EqualTo("1m"));
        Assert.That(ack.GetProperty("instruments").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { Key }));
        Assert.That(ack.GetProperty("rejected")[0].GetProperty("code").GetString(), Is.EqualTo("unknown_instrument"));

        var history = await client.NextAsync("candles");
        Assert.That(history.GetProperty("interval").GetString(), Is.EqualTo("1m"));
        Assert.That(history.GetProperty("data").EnumerateArray().Select(b => Ohlcv(b)), Is.EqualTo(new[] { (IsoUtc(9, 15), 100.0, 102.0, 100.0, 102.0, 300L, (bool?)null) }));

        var forming = await NextWhileAdvancingAsync(time, client, "candle", TimeSpan.FromMilliseconds(50));
        Assert.That(Ohlcv(forming.GetProperty("data")), Is.EqualTo((IsoUtc(9, 16), 101.0, 101.0, 101.0, 101.0, 50L, (bool?)false)));

        await daemon.TickAsync(Key, 104.5, 1400, Ist(9, 16, 40));
        var updated = await NextWhileAdvancingAsync(time, client, "candle", TimeSpan.FromMilliseconds(50));
        Assert.That(Ohlcv(updated.GetProperty("data")), Is.EqualTo((IsoUtc(9, 16), 101.0, 104.5, 101.0, 104.5, 100L, (bool?)false)));
        Assert.That(updated.GetProperty("seq").GetInt64(), Is.GreaterThan(forming.GetProperty("seq").GetInt64()));

        // No trade after 09:16:40: the bar closes when the exchange clock passes 09:17 (and the 1 s grace).
        var closed = await NextWhileAdvancingAsync(time, client, "candle", TimeSpan.FromSeconds(1));
        Assert.That(Ohlcv(closed.GetProperty("data")), Is.EqualTo((IsoUtc(9, 16), 101.0, 104.5, 101.0, 104.5, 100L, (bool?)true)));

        // A bar that closes by a later trade is also sent closed, before its successor.
        await daemon.TickAsync(Key, 105.0, 1500, Ist(9, 18, 30));
        var next = await NextWhileAdvancingAsync(time, client, "candle", TimeSpan.FromMilliseconds(50));
        Assert.That(Ohlcv(next.GetProperty("data")), Is.EqualTo((IsoUtc(9, 18), 105.0, 105.0, 105.0, 105.0, 100L, (bool?)false)));
        await daemon.TickAsync(Key, 106.0, 1550, Ist(9, 19, 1));
        var rolled = await NextWhileAdvancingAsync(time, client, "candle", TimeSpan.FromMilliseconds(50));
        Assert.That(Ohlcv(rolled.GetProperty("data")), Is.EqualTo((IsoUtc(9, 18), 105.0, 105.0, 105.0, 105.0, 100L, (bool?)true)));
        var successor = await NextWhileAdvancingAsync(time, client, "candle", TimeSpan.FromMilliseconds(50));
        Assert.That(Ohlcv(successor.GetProperty("data")), Is.EqualTo((IsoUtc(9, 19), 106.0, 106.0, 106.0, 106.0, 50L, (bool?)false)));

        await client.SendAsync($$"""{"action":"unsubscribe","channel":"candles","interval":"1m","instruments":["{{Key}}"]}""");
        Assert.That((await client.NextAsync("subscribed")).GetProperty("instruments").GetArrayLength(), Is.Zero);
        Assert.That(daemon.Services.GetRequiredService<CandleBook>().Subscribers(CandleBook.Key(daemon.Id(Key), 0)), Is.Empty);
    }

    [Test]
    public async Task Channel_RefusesABadIntervalOrHistory_WithStableCodes_AndCountsAgainstTheLimit()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Limits:MaxSubscriptionsPerConnection"] = "2" });
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SendAsync($$"""{"action":"subscribe","channel":"candles","interval":"2m","instruments":["{{Key}}"]}""");
        Assert.That((await client.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("invalid_interval"));
        await client.SendAsync($$"""{"action":"subscribe","channel":"candles","interval":"1m","history":1001,"instruments":["{{Key}}"]}""");
        Assert.That((await client.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("invalid_history"));

        await client.SubscribeAsync(Key);
        await client.NextAsync("subscribed");
        // One price plus 1m and 5m candles of the same instrument: three subscriptions, the limit is two.
        await client.SendAsync($$"""{"action":"subscribe","channel":"candles","interval":"1m","instruments":["{{Key}}"]}""");
        Assert.That((await client.NextAsync("subscribed")).GetProperty("rejected").GetArrayLength(), Is.Zero);
        await client.SendAsync($$"""{"action":"subscribe","channel":"candles","interval":"5m","instruments":["{{Key}}"]}""");
        var refused = await client.NextAsync("subscribed", f => f.TryGetProperty("interval", out var i) && i.GetString() == "5m");
        Assert.That(refused.GetProperty("rejected")[0].GetProperty("code").GetString(), Is.EqualTo("subscription_limit"));
    }

    [Test]
    public async Task History_SurvivesARestart_AndTheFormingBarResumes()
    {
        var folder = Directory.CreateTempSubdirectory("pricedaemon-candles-").FullName;
        try
        {
            var settings = new Dictionary<string, string> { ["Candles:Path"] = Path.Combine(folder, "candles.db") };
            var time = Clock();
            await using (var first = await TestDaemon.StartAsync(settings, time))
            {
                await first.TickAsync(Key, 100.0, 1000, Ist(9, 14));
                await first.TickAsync(Key, 101.0, 1100, Ist(9, 15, 10));
                await first.TickAsync(Key, 99.0, 1200, Ist(9, 16, 10)); // closes 09:15
                await first.TickAsync(Key, 98.0, 1250, Ist(9, 16, 20));
                var metrics = first.Services.GetRequiredService<PipelineMetrics>();
                await Eventually.TrueAsync(() => Volatile.Read(ref metrics.TicksReceived) == 4, "the ticks read");
            }

            // A clean stop wrote the closed 09:15 bar and the forming 09:16 one with the volume baseline.
            await using var second = await TestDaemon.StartAsync(settings, Clock());
            await second.TickAsync(Key, 102.0, 1400, Ist(9, 16, 50)); // same bar: +150 on top of 09:16's 150
            using var http = second.Http();
            var bars = await AdvanceUntilAsync(second.Time!, async () =>
                await GetCandlesAsync(http, "1m") is { Count: 2 } b && b[1].GetProperty("c").GetDouble() == 102.0 ? b : null);
            Assert.That(bars.Select(Ohlcv), Is.EqualTo(new[]
            {
                (IsoUtc(9, 15), 101.0, 101.0, 101.0, 101.0, 100L, (bool?)null),
                (IsoUtc(9, 16), 99.0, 102.0, 98.0, 102.0, 300L, false),
            }));

            await using var client = await TestClient.ConnectAsync(second.WebSocketUri);
            await client.SendAsync($$"""{"action":"subscribe","channel":"candles","interval":"1m","history":5,"instruments":["{{Key}}"]}""");
            var history = await client.NextAsync("candles");
            Assert.That(history.GetProperty("data").EnumerateArray().Select(b => b.GetProperty("t").GetString()), Is.EqualTo(new[] { IsoUtc(9, 15) }));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public async Task Rest_FiltersByTimeAndLimit_AndRefusesBadQueriesWithClear400s()
    {
        var time = Clock();
        await using var daemon = await TestDaemon.StartAsync(time: time);
        await daemon.TickAsync(Key, 100.0, 1000, Ist(9, 14));
        for (var minute = 15; minute <= 20; minute++)
        {
            await daemon.TickAsync(Key, 100.0 + minute, 1000 + (minute * 10), Ist(9, minute, 5));
        }

        using var http = daemon.Http();
        await AdvanceUntilAsync(time, async () => await GetCandlesAsync(http, "1m") is { Count: 6 } bars ? bars : null);

        var from = new DateTimeOffset(2026, 11, 30, 9, 16, 0, TimeSpan.FromHours(5.5));
        var limited = await GetCandlesAsync(http, "1m", $"&from={from.ToUnixTimeSeconds()}&to={Uri.EscapeDataString("2026-11-30T09:19:00+05:30")}&limit=2");
        Assert.That(limited!.Select(b => b.GetProperty("t").GetString()), Is.EqualTo(new[] { IsoUtc(9, 17), IsoUtc(9, 18) }), "the newest two of 09:16-09:18");

        foreach (var (query, code) in new[]
        {
            ("", "invalid_interval"),
            ("?interval=2h", "invalid_interval"),
            ("?interval=1m&from=yesterday", "invalid_from"),
            ("?interval=1m&to=later", "invalid_to"),
            ("?interval=1m&from=2000&to=1000", "invalid_range"),
            ("?interval=1m&limit=0", "invalid_limit"),
            ("?interval=1m&limit=5001", "invalid_limit"),
        })
        {
            using var response = await http.GetAsync($"/api/candles/{EncodedKey}{query}");
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), query);
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.That(body.RootElement.GetProperty("code").GetString(), Is.EqualTo(code), query);
        }

        using var unknown = await http.GetAsync("/api/candles/NSE_EQ%7CNOPE?interval=1m");
        Assert.That(unknown.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    [Test]
    public async Task Disabled_TheChannelIsUnknown_AndRestSaysCandlesAreOff()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Candles:Enabled"] = "false" });
        Assert.That(daemon.Services.GetService<CandleService>(), Is.Null, "no bar file, no thread");
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SendAsync($$"""{"action":"subscribe","channel":"candles","interval":"1m","instruments":["{{Key}}"]}""");
        Assert.That((await client.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("unknown_channel"));
        using var http = daemon.Http();
        using var response = await http.GetAsync($"/api/candles/{EncodedKey}?interval=1m");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(await response.Content.ReadAsStringAsync(), Does.Contain("candles_disabled"));
    }

    [Test]
    public void Session_AlignsBarsToTheOpen_AndEndsTheLastOnesAtTheClose()
    {
        var session = new CandleSession(new CandleOptions(), includeOutsideSession: false);
        static long Us(int h, int m) => Ist(h, m) * 1000;

        Assert.That(session.Bucket(Us(10, 20), 3, out var start, out var end), Is.True);
        Assert.That((start, end), Is.EqualTo((Us(10, 15), Us(11, 15))), "hours run 09:15, 10:15, ...");
        Assert.That(session.Bucket(Us(15, 20), 3, out start, out end), Is.True);
        Assert.That((start, end), Is.EqualTo((Us(15, 15), Us(15, 30))), "the last hour ends at the close");
        Assert.That(session.Bucket(Us(15, 29), 2, out start, out end), Is.True);
        Assert.That((start, end), Is.EqualTo((Us(15, 15), Us(15, 30))));
        Assert.That(session.Bucket(Us(12, 0), 4, out start, out end), Is.True);
        Assert.That((start, end), Is.EqualTo((Us(9, 15), Us(15, 30))), "the day bar is the session");
        Assert.That(session.Bucket(Us(15, 30), 0, out _, out _), Is.False, "after the close: no bar");
        Assert.That(session.Bucket(Us(9, 14), 0, out _, out _), Is.False, "before the open: no bar");

        var around = new CandleSession(new CandleOptions(), includeOutsideSession: true);
        Assert.That(around.Bucket(Us(9, 14), 1, out start, out _), Is.True);
        Assert.That(start, Is.EqualTo(Us(9, 10)), "outside the session, the same grid");

        // Monday 2026-11-30: ten trading days back is Tuesday 2026-11-17 (two weekends skipped).
        var today = session.TradingDay(Us(12, 0));
        Assert.That(CandleSession.FirstOfTradingDays(today, 10), Is.EqualTo(today - 13));
    }

    private static (string?, double, double, double, double, long, bool?) Ohlcv(JsonElement bar) =>
        (bar.GetProperty("t").GetString(), bar.GetProperty("o").GetDouble(), bar.GetProperty("h").GetDouble(), bar.GetProperty("l").GetDouble(),
            bar.GetProperty("c").GetDouble(), bar.GetProperty("v").GetInt64(), bar.TryGetProperty("closed", out var closed) ? closed.GetBoolean() : null);

    private static string ToUtc(string line)
    {
        var fields = line.Split(',');
        fields[1] = DateTimeOffset.Parse(fields[1]).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'");
        return string.Join(',', fields);
    }

    private static async Task<List<JsonElement>?> GetCandlesAsync(HttpClient http, string interval, string extra = "")
    {
        using var response = await http.GetAsync($"/api/candles/{EncodedKey}?interval={interval}{extra}");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), await response.Content.ReadAsStringAsync());
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return [.. body.RootElement.GetProperty("candles").EnumerateArray().Select(e => e.Clone())];
    }

    /// <summary>Moves the fake clock on in small steps (the candle service passes every 50 ms of it) until the probe has a value.</summary>
    private static async Task<T> AdvanceUntilAsync<T>(FakeTimeProvider time, Func<Task<T?>> probe)
        where T : class =>
        await Eventually.ValueAsync(async () =>
        {
            time.Advance(TimeSpan.FromMilliseconds(50));
            return await probe();
        }, "the candle service's pass");

    /// <summary>The next frame of <paramref name="type"/>, moving the fake clock by <paramref name="step"/> while none has come.</summary>
    private static async Task<JsonElement> NextWhileAdvancingAsync(FakeTimeProvider time, TestClient client, string type, TimeSpan step)
    {
        var next = client.NextAsync(type);
        while (!next.IsCompleted)
        {
            time.Advance(step);
            await Task.WhenAny(next, Task.Delay(20));
        }

        return await next;
    }
}
