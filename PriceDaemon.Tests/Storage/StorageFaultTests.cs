using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using PriceDaemon.Feeds.Replay;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Storage;

/// <summary>
/// Storage faults with the daemon as its own process, each in a temp working folder (data lands in its
/// <c>data/prices.db</c>, the default path): restarts after SIGTERM and kill -9, files it must refuse,
/// a second daemon, and a data folder that stops being writable while it runs.
/// </summary>
public sealed partial class StorageFaultTests
{
    private const int FlushIntervalMs = 200;
    private const string Reliance = "NSE_EQ|INE002A01018";

    // Every instrument ticks every 20-40 ms and every tick is emitted, so prices are never older than that.
    private static readonly string[] _fastFeed =
    [
        "--Feed:Simulated:MinIntervalMs=20", "--Feed:Simulated:MaxIntervalMs=40", "--Feed:Simulated:Seed=11",
        "--Throttle:MinIntervalMs=0", $"--Storage:FlushIntervalMs={FlushIntervalMs}",
    ];

    private string _folder = null!;

    private string DataFolder => Path.Combine(_folder, "data");

    private string DataFile => Path.Combine(DataFolder, "prices.db");

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("pricedaemon-storage-").FullName;

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(DataFolder))
        {
            // A failed read-only test must not leave an undeletable folder behind.
            StorageHelpers.Chattr("-i", [DataFolder, .. Directory.GetFiles(DataFolder)]);
        }

        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public async Task Restart_AfterSigterm_ServesTheSameLastPricesInTheSameEpoch()
    {
        Dictionary<string, JsonElement> before;
        string epoch;
        // An outage from the first second on freezes the prices, so "the last prices" are well defined.
        await using (var daemon = await DaemonProcess.StartAsync(_folder, [.. _fastFeed, "--Feed:Simulated:OutageEverySeconds=1", "--Feed:Simulated:OutageSeconds=600"]))
        {
            using var http = daemon.Http();
            before = await Eventually.ValueAsync(() => FrozenPricesAsync(http), "the feed outage to freeze all 50 prices");
            epoch = await EpochAsync(daemon.WebSocketUri);

            daemon.Signal(DaemonProcess.SigTerm);
            Assert.That(await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15)), Is.Zero);
        }

        await using var again = await DaemonProcess.StartAsync(_folder, "--Feed:Source=None");
        using var client = again.Http();
        var after = await StorageHelpers.GetPricesAsync(client);
        Assert.That(after.Keys, Is.EquivalentTo(before.Keys));
        foreach (var (key, data) in before)
        {
            Assert.That(StorageHelpers.Essence(after[key]), Is.EqualTo(StorageHelpers.Essence(data)), key);
            Assert.That(after[key].GetProperty("source").GetString(), Is.EqualTo("stored"));
            Assert.That(after[key].GetProperty("stale").GetBoolean(), Is.True);
        }

        Assert.That(await EpochAsync(again.WebSocketUri), Is.EqualTo(epoch));
    }

    [Test]
    public async Task Restart_AfterSigterm_StoresTheTickMergedIntoAnOpenThrottleWindow()
    {
        // The second tick comes 1 ms into a 60 s window, so only the stop can emit it. The third is an hour away:
        // the feed never ends on its own and is still running at SIGTERM.
        var replay = Path.Combine(_folder, "day.csv");
        File.WriteAllLines(replay,
        [
            TickFile.CsvHeader,
            $"{Reliance},2026-01-19T09:59:00.000Z,1451.5,1000",
            $"{Reliance},2026-01-19T09:59:00.001Z,1452.05,1100",
            $"{Reliance},2026-01-19T10:59:00.000Z,1499,1200",
        ]);
        await using (var daemon = await DaemonProcess.StartAsync(_folder, "--Feed:Source=Replay", $"--Feed:Replay:Path={replay}", "--Feed:Replay:Speed=1", "--Throttle:MinIntervalMs=60000"))
        {
            await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
            await client.SubscribeAsync(Reliance);
            await client.NextPriceAsync(Reliance, 1451.5);
            using var http = daemon.Http();
            await Eventually.ValueAsync(
                async () => TwoTicksRead().IsMatch(await http.GetStringAsync(new Uri("/metrics", UriKind.Relative))) ? new object() : null,
                "the throttle stage to read the second tick (pending in the window)");

            daemon.Signal(DaemonProcess.SigTerm);

            // The client holds the last price too: the stop fans it out and writes it ahead of the 1001.
            await client.NextPriceAsync(Reliance, 1452.05);
            Assert.That(await client.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.EndpointUnavailable));
            Assert.That(await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15)), Is.Zero);
        }

        await using var again = await DaemonProcess.StartAsync(_folder, "--Feed:Source=None");
        using var rest = again.Http();
        using var body = JsonDocument.Parse(await rest.GetStringAsync(new Uri("/api/prices/NSE_EQ%7CINE002A01018", UriKind.Relative)));
        var data = body.RootElement.GetProperty("data");
        Assert.That(
            (data.GetProperty("last_price").GetDouble(), data.GetProperty("volume").GetInt64(), data.GetProperty("seq").GetInt64()),
            Is.EqualTo((1452.05, 1100L, 2L)),
            "the stored price is the last tick the daemon received");
    }

    [Test]
    public async Task Restart_AfterKill9_RestoresPricesAtMostOneFlushIntervalOld_InANewEpoch()
    {
        DateTimeOffset killedAt;
        string epoch;
        await using (var daemon = await DaemonProcess.StartAsync(_folder, _fastFeed))
        {
            using var http = daemon.Http();
            // Every instrument past seq 15 means the daemon has been ticking for several flush intervals.
            await Eventually.ValueAsync(
                async () => await StorageHelpers.GetPricesAsync(http) is { Count: 50 } p && p.Values.All(d => d.GetProperty("seq").GetInt64() > 15) ? p : null,
                "all 50 instruments to tick for a while");
            epoch = await EpochAsync(daemon.WebSocketUri);

            killedAt = DateTimeOffset.UtcNow;
            daemon.Signal(DaemonProcess.SigKill);
            await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15));
        }

        await using var again = await DaemonProcess.StartAsync(_folder, "--Feed:Source=None");
        Assert.That(again.Output, Has.Some.Contains("did not stop cleanly"));
        using var client = again.Http();
        var restored = await StorageHelpers.GetPricesAsync(client);
        Assert.That(restored, Has.Count.EqualTo(50));

        // One flush interval, plus the flush itself, one tick interval and scheduling on a busy 2-core machine.
        var allowed = TimeSpan.FromMilliseconds(FlushIntervalMs + 300);
        var oldest = restored.Values.Max(d => killedAt - DateTimeOffset.Parse(d.GetProperty("timestamp").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        TestContext.Out.WriteLine($"oldest restored price: {oldest.TotalMilliseconds:F0} ms before the kill (allowed {allowed.TotalMilliseconds} ms)");
        Assert.That(oldest, Is.LessThanOrEqualTo(allowed), "the oldest restored price");
        Assert.That(restored.Values.Select(d => d.GetProperty("stale").GetBoolean()), Is.All.True);
        Assert.That(await EpochAsync(again.WebSocketUri), Is.Not.EqualTo(epoch), "state after the last flush was lost: clients must see a new epoch");
    }

    [TestCase("text")]
    [TestCase("damaged")]
    public async Task Start_RefusesADataFileItCannotRead_WithOneLine_AndLeavesItByteForByte(string kind)
    {
        StorageHelpers.WriteBadDataFile(DataFile, kind);
        var before = StorageHelpers.Sha256(DataFile);

        var (exit, output) = await DaemonProcess.RunToExitAsync(_folder, "--urls", "http://127.0.0.1:0");

        Assert.That(exit, Is.EqualTo(3));
        Assert.That(output.Where(l => l.Length > 0), Has.Exactly(1).Items, string.Join(Environment.NewLine, output));
        Assert.That(output, Has.Exactly(1).StartsWith("pricedaemon: cannot start: Storage:Path: cannot use").And.Contain("left untouched"));
        Assert.That(StorageHelpers.Sha256(DataFile), Is.EqualTo(before));
    }

    [Test]
    public async Task Start_RefusesACandleFileThatIsNotLiteDb_WithOneLine_AndLeavesItByteForByte()
    {
        // 9,000 bytes: LiteDB opened for writing truncated such a file to one page.
        var candles = Path.Combine(DataFolder, "candles.db");
        Directory.CreateDirectory(DataFolder);
        var junk = new byte[9_000];
        new Random(9).NextBytes(junk);
        File.WriteAllBytes(candles, junk);

        var (exit, output) = await DaemonProcess.RunToExitAsync(_folder, "--urls", "http://127.0.0.1:0");

        Assert.That(exit, Is.EqualTo(3), string.Join(Environment.NewLine, output));
        Assert.That(output, Has.Exactly(1).StartsWith($"pricedaemon: cannot start: Candles:Path: cannot use {candles}: it is not a LiteDB database").And.Contain("left untouched"));
        Assert.That(File.ReadAllBytes(candles), Is.EqualTo(junk));
    }

    [Test]
    public async Task SecondDaemon_OnTheSameDataFile_RefusesToStart_AndTheFileStaysGood()
    {
        await using (var first = await DaemonProcess.StartAsync(_folder, _fastFeed))
        {
            using var http = first.Http();
            await Eventually.ValueAsync(async () => await StorageHelpers.GetPricesAsync(http) is { Count: 50 } p ? p : null, "prices for all 50 instruments");

            var (exit, output) = await DaemonProcess.RunToExitAsync(_folder, "--urls", "http://127.0.0.1:0");

            Assert.That(exit, Is.EqualTo(3));
            Assert.That(output, Has.Exactly(1).Contains("is in use by another PriceDaemon"));
            Assert.That(output, Has.None.Contains("Now listening"));
            var (status, ready) = await ReadyAsync(http);
            Assert.That((status, ready.GetProperty("status").GetString()), Is.EqualTo((HttpStatusCode.OK, "healthy")), "the first daemon is unaffected");
            first.Signal(DaemonProcess.SigTerm);
            Assert.That(await first.WaitForExitAsync(TimeSpan.FromSeconds(15)), Is.Zero);
        }

        await using var again = await DaemonProcess.StartAsync(_folder, "--Feed:Source=None");
        using var client = again.Http();
        Assert.That(await StorageHelpers.GetPricesAsync(client), Has.Count.EqualTo(50));
        var (_, body) = await ReadyAsync(client);
        Assert.That(body.GetProperty("checks").GetProperty("storage").GetProperty("status").GetString(), Is.EqualTo("healthy"));
    }

    [Test]
    public async Task DataFolderNotWritable_WhileRunning_DegradesReadiness_LogsOnce_ThenCatchesUp()
    {
        // Debug shows each retry, so the test can wait for several failures instead of sleeping.
        await using var daemon = await DaemonProcess.StartAsync(_folder, [.. _fastFeed, "--Serilog:MinimumLevel:Override:PriceDaemon.Storage=Debug"]);
        using var http = daemon.Http();
        await Eventually.ValueAsync(async () => await ReadyAsync(http) is (HttpStatusCode.OK, var r) && r.GetProperty("status").GetString() == "healthy" ? new[] { r } : null, "readiness");

        StorageHelpers.Chattr("+i", [DataFolder, .. Directory.GetFiles(DataFolder)]);
        try
        {
            var degraded = await Eventually.ValueAsync(async () => await ReadyAsync(http) is (HttpStatusCode.OK, var r) && r.GetProperty("status").GetString() == "degraded" ? new[] { r } : null, "readiness to report storage degraded");
            var storage = degraded[0].GetProperty("checks").GetProperty("storage");
            Assert.That(storage.GetProperty("status").GetString(), Is.EqualTo("degraded"));
            Assert.That(storage.GetProperty("description").GetString(), Does.Contain("failing"));
            Assert.That(degraded[0].GetProperty("checks").GetProperty("cache").GetProperty("status").GetString(), Is.EqualTo("healthy"));

            // Retries keep failing while prices stay in memory and keep moving.
            var seq = (await StorageHelpers.GetPricesAsync(http))["NSE_EQ|INE002A01018"].GetProperty("seq").GetInt64();
            await Eventually.ValueAsync(() => Task.FromResult(daemon.Output.Any(l => l.Contains("write attempt 3 failed", StringComparison.Ordinal)) ? daemon.Output : null), "three failed write attempts", () => string.Join(Environment.NewLine, daemon.Output.TakeLast(60)));
            await Eventually.ValueAsync(async () => (await StorageHelpers.GetPricesAsync(http))["NSE_EQ|INE002A01018"].GetProperty("seq").GetInt64() > seq + 5 ? new object() : null, "prices to keep moving");
        }
        finally
        {
            StorageHelpers.Chattr("-i", [DataFolder, .. Directory.GetFiles(DataFolder)]);
        }

        await Eventually.ValueAsync(async () => await ReadyAsync(http) is (HttpStatusCode.OK, var r) && r.GetProperty("status").GetString() == "healthy" ? new[] { r } : null, "readiness to recover");
        Assert.That(daemon.Output.Count(l => l.Contains("are failing:", StringComparison.Ordinal)), Is.EqualTo(1), "one error per burst, not one per attempt");
        Assert.That(daemon.Output, Has.Some.Contains("recovered after"));

        // Caught up: a kill now (no final flush) restores prices as fresh as ever.
        var killedAt = DateTimeOffset.UtcNow;
        daemon.Signal(DaemonProcess.SigKill);
        await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15));
        await using var again = await DaemonProcess.StartAsync(_folder, "--Feed:Source=None");
        using var client = again.Http();
        var restored = await StorageHelpers.GetPricesAsync(client);
        var oldest = restored.Values.Max(d => killedAt - DateTimeOffset.Parse(d.GetProperty("timestamp").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.That(oldest, Is.LessThanOrEqualTo(TimeSpan.FromMilliseconds(FlushIntervalMs + 300)));
    }

    [Test]
    public async Task BadStorageValue_StopsStartup_NamingTheKey_AndExit2()
    {
        var (exit, output) = await DaemonProcess.RunToExitAsync(_folder, "--urls", "http://127.0.0.1:0", "--Storage:FlushIntervalMs=0");
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Has.Exactly(1).StartsWith("pricedaemon: invalid configuration: Storage:FlushIntervalMs"));
    }

    /// <summary>All 50 prices, once the feed is down and two reads in a row agree (nothing left in flight).</summary>
    private static async Task<Dictionary<string, JsonElement>?> FrozenPricesAsync(HttpClient http)
    {
        var first = await StorageHelpers.GetPricesAsync(http);
        if (first.Count != 50 || !first.Values.All(d => d.GetProperty("stale").GetBoolean()))
        {
            return null;
        }

        var second = await StorageHelpers.GetPricesAsync(http);
        return second.All(p => StorageHelpers.Essence(p.Value) == StorageHelpers.Essence(first[p.Key])) ? second : null;
    }

    private static async Task<string> EpochAsync(Uri webSocket)
    {
        await using var client = await TestClient.ConnectAsync(webSocket);
        return (await client.NextAsync("status")).GetProperty("epoch").GetString()!;
    }

    [GeneratedRegex(@"^pricedaemon_ticks_received_total 2$", RegexOptions.Multiline)]
    private static partial Regex TwoTicksRead();

    private static async Task<(HttpStatusCode Status, JsonElement Body)> ReadyAsync(HttpClient http)
    {
        using var response = await http.GetAsync(new Uri("/health/ready", UriKind.Relative));
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return (response.StatusCode, body.RootElement.Clone());
    }
}
