using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using PriceDaemon.Feeds;
using PriceDaemon.Sockets;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Sockets;

/// <summary>The per-client latency breakdown over real sockets: <c>"timing": true</c> on subscribe.</summary>
public sealed class TimingTests
{
    private const string Key = "NSE_EQ|INE002A01018";

    [Test]
    public async Task ReceivedAt_IsInTheFramesOfTheSocketThatAskedOnly_AndLiesBetweenTheTradeAndItsArrival()
    {
        await using var daemon = await TestDaemon.StartAsync();
        await using var timed = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await using var plain = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await timed.SendAsync(JsonSerializer.Serialize(new { action = "subscribe", instruments = new[] { Key }, timing = true }));
        await plain.SubscribeAsync(Key);
        await timed.NextAsync("subscribed");
        await plain.NextAsync("subscribed");

        // A tick as a feed writes it: the trade 40 ms ago, received by the daemon now.
        var before = DateTimeOffset.UtcNow;
        var traded = before.AddMilliseconds(-40);
        await daemon.Ticks.WriteAsync(new Tick(daemon.Id(Key), 1500.25, 100, traded.ToUnixTimeMilliseconds() * 1000, TimeProvider.System.GetTimestamp(), PriceSource.Live));
        var withTiming = (await timed.NextPriceAsync(Key, 1500.25)).GetProperty("data");
        var arrived = DateTimeOffset.UtcNow;
        var without = (await plain.NextPriceAsync(Key, 1500.25)).GetProperty("data");

        Assert.That(without.TryGetProperty("received_at", out _), Is.False, "a socket that did not ask pays nothing and gets nothing");
        var receivedAt = DateTimeOffset.Parse(withTiming.GetProperty("received_at").GetString()!, CultureInfo.InvariantCulture);
        var timestamp = DateTimeOffset.Parse(withTiming.GetProperty("timestamp").GetString()!, CultureInfo.InvariantCulture);
        Assert.That(withTiming.GetProperty("received_at").GetString(), Does.Match(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"));
        Assert.That(receivedAt, Is.GreaterThan(timestamp), "received after the trade (exchange → daemon is positive)");
        // The daemon's clock and this process's are the same; a millisecond either way for rounding.
        Assert.That(receivedAt, Is.InRange(before.AddMilliseconds(-1), arrived.AddMilliseconds(1)), "daemon → client is positive");
        Assert.That(withTiming.GetProperty("seq").GetInt64(), Is.EqualTo(without.GetProperty("seq").GetInt64()), "the same update");

        // "timing": false on a later subscribe turns it off for the connection.
        await timed.SendAsync(JsonSerializer.Serialize(new { action = "subscribe", instruments = new[] { Key }, timing = false }));
        await timed.NextAsync("subscribed");
        await daemon.Ticks.WriteAsync(new Tick(daemon.Id(Key), 1500.3, 200, traded.ToUnixTimeMilliseconds() * 1000, TimeProvider.System.GetTimestamp(), PriceSource.Live));
        var off = (await timed.NextPriceAsync(Key, 1500.3)).GetProperty("data");
        Assert.That(off.TryGetProperty("received_at", out _), Is.False);
    }

    [Test]
    public async Task ABadTimingValue_GetsAnInvalidMessageError_AndTheSocketStaysOpen()
    {
        await using var daemon = await TestDaemon.StartAsync();
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SendAsync($$"""{"action":"subscribe","instruments":["{{Key}}"],"timing":"yes"}""");
        var error = await client.NextAsync("error");
        Assert.That(error.GetProperty("code").GetString(), Is.EqualTo(ErrorCodes.InvalidMessage));
        await client.SubscribeAsync(Key);
        await client.NextAsync("subscribed");
        Assert.That(daemon.Services.GetRequiredService<SessionRegistry>().Count, Is.EqualTo(1));
    }
}
