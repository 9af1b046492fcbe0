using System.Text.Json;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Sockets;

/// <summary>
/// The client's <c>"req"</c> on alert_* comes back on the answer and on the error that message caused, over a real socket:
/// what lets a client with several requests in flight match answers by id, not by order.
/// </summary>
public sealed class AlertRequestIdTests
{
    private const string A = "NSE_EQ|INE002A01018";

    [Test]
    public async Task EachAnswerAndError_EchoesTheRequestIdOfItsMessage()
    {
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Alerts:MaxPerUser"] = "1" });
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);

        // Two creates back to back: the second is over the limit and refused at once, the first answered once stored.
        await client.SendAsync($$"""{"action":"alert_create","req":"c-1","instrument_key":"{{A}}","condition":"above","price":5000}""");
        await client.SendAsync($$"""{"req":"c-2","action":"alert_create","instrument_key":"{{A}}","condition":"below","price":10}""");
        await client.SendAsync("""{"action":"alert_list","req":"l-3"}""");
        await client.SendAsync("""{"action":"alert_delete","id":"al-nope","req":"d-4"}""");
        await client.SendAsync("""{"action":"alert_create","req":"c-5","instrument_key":"NSE_EQ|NOPE","condition":"above","price":1}""");
        await client.SendAsync("""{"action":"alert_create","req":"c-6","instrument_key":"NSE_EQ|INE002A01018","condition":"sideways","price":1}""");
        await client.SendAsync("""{"action":"alert_list","req":"l-7","instruments":5}""");
        await client.SendAsync("""{"action":"alert_list","req":7}""");

        var frames = new Dictionary<string, JsonElement>();
        var unnamed = new List<JsonElement>();
        while (frames.Count < 7 || unnamed.Count < 1)
        {
            var frame = (await client.CollectUntilAsync(static _ => true))[0];
            if (Type(frame) is not ("alert_created" or "alerts" or "error"))
            {
                continue; // the status frame of the connect
            }

            if (frame.TryGetProperty("req", out var req))
            {
                frames.Add(req.GetString()!, frame);
            }
            else
            {
                unnamed.Add(frame);
            }
        }

        Assert.Multiple(() =>
        {
            Assert.That(Type(frames["c-1"]), Is.EqualTo("alert_created"));
            Assert.That(frames["c-1"].GetProperty("alert").GetProperty("price").GetDouble(), Is.EqualTo(5000));
            Assert.That(Code(frames["c-2"]), Is.EqualTo("alert_limit"));
            Assert.That(Type(frames["l-3"]), Is.EqualTo("alerts"));
            Assert.That(Code(frames["d-4"]), Is.EqualTo("unknown_alert"));
            Assert.That(Code(frames["c-5"]), Is.EqualTo("unknown_instrument"));
            Assert.That(Code(frames["c-6"]), Is.EqualTo("invalid_message"));
            Assert.That(Code(frames["l-7"]), Is.EqualTo("invalid_message"), "an error of the parser, after it read the req");
            // A req that is not a string cannot be echoed: the error says what is wrong with it.
            Assert.That(Code(unnamed[0]), Is.EqualTo("invalid_message"));
            Assert.That(unnamed[0].GetProperty("message").GetString(), Does.Contain("'req'"));
        });
    }

    [Test]
    public async Task AMessageWithoutARequestId_IsAnsweredAsBefore()
    {
        await using var daemon = await TestDaemon.StartAsync();
        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SendAsync("""{"action":"alert_list"}""");
        var list = await client.NextAsync("alerts");
        Assert.That(list.TryGetProperty("req", out _), Is.False);
        Assert.That(list.GetProperty("alerts").GetArrayLength(), Is.Zero);
    }

    private static string? Type(JsonElement frame) => frame.GetProperty("type").GetString();

    private static string? Code(JsonElement frame) => Type(frame) == "error" ? frame.GetProperty("code").GetString() : $"not an error: {frame}";
}
