using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Sockets;

/// <summary>The wire protocol of DESIGN.md, spoken by a real ClientWebSocket to the real host.</summary>
public sealed class ProtocolTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";
    private const string Tcs = "NSE_EQ|INE467B01029";
    private const string Infosys = "NSE_EQ|INE009A01021";

    private TestDaemon _daemon = null!;

    [SetUp]
    public async Task SetUp() => _daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Limits:MaxSubscriptionsPerConnection"] = "3" });

    [TearDown]
    public async Task TearDown() => await _daemon.DisposeAsync();

    [Test]
    public async Task Connect_SendsStatusWithEpoch_First()
    {
        await using var client = await TestClient.ConnectAsync(_daemon.WebSocketUri);
        var status = await client.CollectUntilAsync(_ => true);
        Assert.That(status[0].GetProperty("type").GetString(), Is.EqualTo("status"));
        Assert.That(status[0].GetProperty("status").GetString(), Is.AnyOf("connected", "disconnected", "error"));
        Assert.That(status[0].GetProperty("epoch").GetString(), Is.Not.Empty);
    }

    [Test]
    public async Task Subscribe_SendsSnapshotAndAck_ThenOnlySubscribedUpdates()
    {
        await _daemon.TickAsync(Reliance, 1451.5, 1000);
        await _daemon.TickAsync(Tcs, 3108.4, 2000);
        await using var client = await TestClient.ConnectAsync(_daemon.WebSocketUri);
        await WaitUntilCachedAsync(Reliance, 1451.5);
        await WaitUntilCachedAsync(Tcs, 3108.4);

        await client.SubscribeAsync(Reliance, Tcs);
        var ack = await client.NextAsync("subscribed");
        Assert.That(Keys(ack, "instruments"), Is.EquivalentTo(new[] { Reliance, Tcs }));
        Assert.That(ack.GetProperty("rejected").GetArrayLength(), Is.Zero);

        var snapshot = await client.NextPriceAsync(Reliance, 1451.5);
        Assert.That(snapshot.GetProperty("data").GetProperty("volume").GetInt64(), Is.EqualTo(1000));
        Assert.That(snapshot.GetProperty("data").GetProperty("seq").GetInt64(), Is.EqualTo(1));
        Assert.That(snapshot.GetProperty("data").GetProperty("source").GetString(), Is.EqualTo("live"));
        await client.NextPriceAsync(Tcs, 3108.4);

        // Infosys is not subscribed: its ticks must not reach the client. Reliance's next tick is the barrier.
        await _daemon.TickAsync(Infosys, 1536.4);
        await _daemon.TickAsync(Infosys, 1537.4);
        await _daemon.TickAsync(Reliance, 1452.0);
        var frames = await client.CollectUntilAsync(f => IsPrice(f, Reliance, 1452.0));
        Assert.That(frames.Where(f => f.GetProperty("type").GetString() == "price_update").Select(InstrumentKey), Has.None.EqualTo(Infosys));
        Assert.That(frames[^1].GetProperty("data").GetProperty("seq").GetInt64(), Is.EqualTo(2));
    }

    [Test]
    public async Task Unsubscribe_StopsUpdates_AndAckListsWhatRemains()
    {
        await using var client = await TestClient.ConnectAsync(_daemon.WebSocketUri);
        await client.SubscribeAsync(Reliance, Tcs);
        await client.NextAsync("subscribed");

        await client.UnsubscribeAsync(Reliance);
        var ack = await client.NextAsync("subscribed");
        Assert.That(ack.GetProperty("action").GetString(), Is.EqualTo("unsubscribe"));
        Assert.That(Keys(ack, "instruments"), Is.EqualTo(new[] { Tcs }));

        await _daemon.TickAsync(Reliance, 1460);
        await _daemon.TickAsync(Tcs, 3110);
        var frames = await client.CollectUntilAsync(f => IsPrice(f, Tcs, 3110));
        Assert.That(frames.Where(f => f.GetProperty("type").GetString() == "price_update").Select(InstrumentKey), Has.None.EqualTo(Reliance));
    }

    [Test]
    public async Task Subscribe_RejectsUnknownAndOverLimit_AcceptsTheRest()
    {
        await using var client = await TestClient.ConnectAsync(_daemon.WebSocketUri);
        await client.SubscribeAsync(Reliance, "NSE_EQ|NOPE", Tcs, Infosys, "NSE_EQ|INE154A01025");

        var error = await client.NextAsync("error");
        Assert.That(error.GetProperty("code").GetString(), Is.EqualTo("unknown_instrument"));
        Assert.That(Keys(error, "instruments"), Is.EqualTo(new[] { "NSE_EQ|NOPE" }));

        var ack = await client.NextAsync("subscribed");
        Assert.That(Keys(ack, "instruments"), Is.EquivalentTo(new[] { Reliance, Tcs, Infosys }));
        var rejected = ack.GetProperty("rejected").EnumerateArray()
            .Select(r => (r.GetProperty("instrument_key").GetString(), r.GetProperty("code").GetString())).ToList();
        Assert.That(rejected, Is.EquivalentTo(new[] { ("NSE_EQ|NOPE", "unknown_instrument"), ("NSE_EQ|INE154A01025", "subscription_limit") }));
    }

    [TestCase("not json at all", "invalid_message")]
    [TestCase("[1,2,3]", "invalid_message")]
    [TestCase("{\"instruments\":[\"NSE_EQ|INE002A01018\"]}", "invalid_message")]
    [TestCase("{\"action\":\"subscribe\"}", "invalid_message")]
    [TestCase("{\"action\":\"subscribe\",\"instruments\":\"NSE_EQ|INE002A01018\"}", "invalid_message")]
    [TestCase("{\"action\":\"subscribe\",\"instruments\":[42]}", "invalid_message")]
    [TestCase("{\"action\":42,\"instruments\":[]}", "invalid_message")]
    [TestCase("{\"action\":\"buy\",\"instruments\":[]}", "unknown_action")]
    public async Task BadMessage_GetsErrorFrame_AndConnectionStaysOpen(string message, string code)
    {
        await using var client = await TestClient.ConnectAsync(_daemon.WebSocketUri);
        await client.SendAsync(message);
        var error = await client.NextAsync("error");
        Assert.That(error.GetProperty("code").GetString(), Is.EqualTo(code));
        Assert.That(error.GetProperty("message").GetString(), Is.Not.Empty);

        // Still open and still useful.
        await client.SubscribeAsync(Reliance);
        var ack = await client.NextAsync("subscribed");
        Assert.That(Keys(ack, "instruments"), Is.EqualTo(new[] { Reliance }));
        Assert.That(client.Socket.State, Is.EqualTo(WebSocketState.Open));
    }

    [Test]
    public async Task UnknownFields_AreIgnored()
    {
        await using var client = await TestClient.ConnectAsync(_daemon.WebSocketUri);
        await client.SendAsync("{\"request_id\":7,\"action\":\"subscribe\",\"extra\":{\"a\":[1,{}]},\"instruments\":[\"NSE_EQ|INE002A01018\"]}");
        var ack = await client.NextAsync("subscribed");
        Assert.That(Keys(ack, "instruments"), Is.EqualTo(new[] { Reliance }));
    }

    [Test]
    public async Task OversizeMessage_GetsErrorThenClose1009()
    {
        await using var client = await TestClient.ConnectAsync(_daemon.WebSocketUri);
        var huge = "{\"action\":\"subscribe\",\"instruments\":[\"" + new string('x', 20_000) + "\"]}";
        await client.SendAsync(huge);
        var error = await client.NextAsync("error");
        Assert.That(error.GetProperty("code").GetString(), Is.EqualTo("message_too_large"));
        Assert.That(await client.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.MessageTooBig));
    }

    [Test]
    public async Task BinaryFrame_ClosesWith1003()
    {
        await using var client = await TestClient.ConnectAsync(_daemon.WebSocketUri);
        await client.Socket.SendAsync(Encoding.UTF8.GetBytes("{\"action\":\"subscribe\"}"), WebSocketMessageType.Binary, true, CancellationToken.None);
        Assert.That(await client.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.InvalidMessageType));
    }

    [Test]
    public async Task PlainHttpRequest_ToSocketPath_Gets400WithHint()
    {
        using var http = _daemon.Http();
        var response = await http.GetAsync("/api/ws/prices");
        Assert.That((int)response.StatusCode, Is.EqualTo(400));
        Assert.That(await response.Content.ReadAsStringAsync(), Does.Contain("websocket_required"));
    }

    [Test]
    public async Task Shutdown_ClosesEveryClientWith1001()
    {
        var first = await TestClient.ConnectAsync(_daemon.WebSocketUri);
        var second = await TestClient.ConnectAsync(_daemon.WebSocketUri);
        await first.SubscribeAsync(Reliance);
        await first.NextAsync("subscribed");
        await second.NextAsync("status");

        await _daemon.StopAsync();

        Assert.That(await first.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.EndpointUnavailable));
        Assert.That(first.CloseDescription, Is.EqualTo("server shutting down"));
        Assert.That(await second.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.EndpointUnavailable));
        await first.DisposeAsync();
        await second.DisposeAsync();
    }

    private async Task WaitUntilCachedAsync(string key, double price)
    {
        var cache = (PriceDaemon.Pipeline.PriceCache)_daemon.Services.GetService(typeof(PriceDaemon.Pipeline.PriceCache))!;
        var id = _daemon.Id(key);
        using var timeout = new CancellationTokenSource(TestClient.Timeout);
        // TryGetValues copies in a read scope of its own: the cached frame is pooled and may be refilled under a bare read.
        while (!(cache.TryGetValues(id, out var cached) && cached.LastPrice == price))
        {
            await Task.Delay(5, timeout.Token);
        }
    }

    private static bool IsPrice(JsonElement frame, string key, double price) =>
        frame.GetProperty("type").GetString() == "price_update"
        && InstrumentKey(frame) == key
        && frame.GetProperty("data").GetProperty("last_price").GetDouble() == price;

    private static string? InstrumentKey(JsonElement frame) => frame.GetProperty("instrument_key").GetString();

    private static List<string?> Keys(JsonElement frame, string property) =>
        frame.GetProperty(property).EnumerateArray().Select(e => e.GetString()).ToList();
}
