using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Depth;

/// <summary>
/// Depth from the loopback Upstox fake: a depth client raises the instrument to <c>full</c>, a book client to
/// <c>full_d30</c>, and the mode falls back as the last of each leaves; the books Upstox sends reach the sockets.
/// </summary>
[TestFixture]
public sealed class UpstoxDepthTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";
    private const string Infosys = "NSE_EQ|INE009A01021";

    private FakeUpstox _fake = null!;
    private string _folder = null!;

    [SetUp]
    public async Task SetUp()
    {
        _fake = await FakeUpstox.StartAsync();
        _folder = Directory.CreateTempSubdirectory("pricedaemon-upstox-depth-").FullName;
    }

    [TearDown]
    public async Task TearDown()
    {
        await _fake.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public async Task UpstoxDepth_SwitchesToFullThenFullD30_AndBack_AsDepthAndBookClientsComeAndGo()
    {
        await using var daemon = await StartDaemonAsync();
        await using var prices = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await prices.SubscribeAsync(Reliance);
        await Eventually.TrueAsync(() => _fake.Modes.GetValueOrDefault(Reliance) == "ltpc", "ltpc for a price client");

        await using var depth = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await depth.SendAsync($$"""{"action":"subscribe","channel":"depth","instruments":["{{Reliance}}"]}""");
        Assert.That((await depth.NextAsync("subscribed")).GetProperty("channel").GetString(), Is.EqualTo("depth"));
        await Eventually.TrueAsync(() => _fake.Modes.GetValueOrDefault(Reliance) == "full", "full for a depth client");
        Assert.That(_fake.Requests.Last(r => r.Keys.Contains(Reliance)).Method, Is.EqualTo("change_mode"), "a mode change keeps the place upstream");

        var ts = DateTimeOffset.Parse("2026-01-19T04:00:00.5Z").ToUnixTimeMilliseconds();
        await _fake.SendAsync(FakeUpstox.FullFeedWithDepth(Reliance, 2451.5, 2451.45, 5, ts));
        var frame = await depth.NextAsync("depth");
        var bids = DepthSocketTests.Levels(frame, "bids");
        Assert.That(bids, Has.Count.EqualTo(5));
        Assert.That(bids[0], Is.EqualTo(new[] { 2451.45, 10, 0 }), "Upstox V3 quotes carry no order count");
        Assert.That(DepthSocketTests.Levels(frame, "asks")[4], Is.EqualTo(new[] { 2451.7, 24, 0 }));
        Assert.That(frame.GetProperty("data").GetProperty("timestamp").GetString(), Is.EqualTo("2026-01-19T04:00:00.500Z"));
        Assert.That(frame.GetProperty("data").GetProperty("source").GetString(), Is.EqualTo("live"));
        Assert.That((await prices.NextPriceAsync(Reliance, 2451.5)).GetProperty("data").GetProperty("volume").GetInt64(), Is.EqualTo(123_456), "prices still flow in full mode");

        await using var book = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await book.SendAsync($$"""{"action":"subscribe","channel":"book","instruments":["{{Reliance}}"]}""");
        await book.NextAsync("subscribed");
        await Eventually.TrueAsync(() => _fake.Modes.GetValueOrDefault(Reliance) == "full_d30", "full_d30 for a book client");
        await _fake.SendAsync(FakeUpstox.FullFeedWithDepth(Reliance, 2451.6, 2451.5, 30, ts + 1000));
        var full = await book.NextAsync("book", f => f.GetProperty("data").GetProperty("seq").GetInt64() == 2);
        Assert.That(DepthSocketTests.Levels(full, "bids"), Has.Count.EqualTo(30));
        var top = await depth.NextAsync("depth", f => f.GetProperty("data").GetProperty("seq").GetInt64() == 2);
        Assert.That(DepthSocketTests.Levels(top, "bids"), Has.Count.EqualTo(5), "the depth channel shows the best 5 of the 30");
        Assert.That(DepthSocketTests.Levels(top, "bids")[0][0], Is.EqualTo(2451.5));

        await book.DisposeAsync();
        await Eventually.TrueAsync(() => _fake.Modes.GetValueOrDefault(Reliance) == "full", "back to full when the book client leaves");
        await depth.SendAsync($$"""{"action":"unsubscribe","channel":"depth","instruments":["{{Reliance}}"]}""");
        await Eventually.TrueAsync(() => _fake.Modes.GetValueOrDefault(Reliance) == "ltpc", "back to ltpc when the last depth client leaves");
        Assert.That(_fake.Subscribed, Does.Contain(Reliance), "the price client still has it");
        Assert.That(_fake.Requests.Count(r => r.Method == "sub" && r.Keys.Contains(Reliance)), Is.EqualTo(1), "one sub; every switch was a change_mode");
    }

    [Test]
    public async Task UpstoxDepth_RefusesABookBeyondTheFullD30Cap_WithUpstreamLimit()
    {
        await using var daemon = await StartDaemonAsync(new() { ["Feed:Upstox:MaxBookInstruments"] = "1" });
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SendAsync($$"""{"action":"subscribe","channel":"book","instruments":["{{Reliance}}","{{Infosys}}"]}""");
        var ack = await client.NextAsync("subscribed");
        Assert.That(ack.GetProperty("instruments").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { Reliance }));
        Assert.That(ack.GetProperty("rejected")[0].GetProperty("instrument_key").GetString(), Is.EqualTo(Infosys));
        Assert.That(ack.GetProperty("rejected")[0].GetProperty("code").GetString(), Is.EqualTo("upstream_limit"));
        await Eventually.TrueAsync(() => _fake.Modes.GetValueOrDefault(Reliance) == "full_d30", "the one book upstream");
        Assert.That(_fake.Subscribed, Does.Not.Contain(Infosys));

        // The refusal gave back the user's place: a depth subscription (full, its own cap) still fits.
        await client.SendAsync($$"""{"action":"subscribe","channel":"depth","instruments":["{{Infosys}}"]}""");
        Assert.That((await client.NextAsync("subscribed")).GetProperty("rejected").GetArrayLength(), Is.Zero);
        await Eventually.TrueAsync(() => _fake.Modes.GetValueOrDefault(Infosys) == "full", "depth in full mode");
    }

    private Task<TestDaemon> StartDaemonAsync(Dictionary<string, string>? extra = null)
    {
        var tokenFile = Path.Combine(_folder, "upstox.token");
        File.WriteAllText(tokenFile, FakeUpstox.GoodToken + "\n");
        return TestDaemon.StartAsync(_fake.DaemonSettings(tokenFile, extra));
    }
}
