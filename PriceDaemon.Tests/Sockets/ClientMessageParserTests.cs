using System.Text;
using PriceDaemon.Sockets;

namespace PriceDaemon.Tests.Sockets;

public sealed class ClientMessageParserTests
{
    [Test]
    public void Parse_Subscribe_ReadsKeysInOrder()
    {
        var keys = new List<string>();
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes("{\"action\":\"subscribe\",\"instruments\":[\"A|1\",\"B|2\"]}"), out var action, keys);
        Assert.That(error, Is.Null);
        Assert.That(action, Is.EqualTo(ClientAction.Subscribe));
        Assert.That(keys, Is.EqualTo(new[] { "A|1", "B|2" }));
    }

    [Test]
    public void Parse_FieldOrderAndUnknownFields_DoNotMatter()
    {
        var keys = new List<string>();
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes("{\"instruments\":[\"A|1\"],\"x\":{\"y\":[null,true]},\"action\":\"unsubscribe\"}"), out var action, keys);
        Assert.That(error, Is.Null);
        Assert.That(action, Is.EqualTo(ClientAction.Unsubscribe));
        Assert.That(keys, Is.EqualTo(new[] { "A|1" }));
    }

    [TestCase("{\"action\":\"subscribe\",\"instruments\":[]} {}", "invalid_message")]
    [TestCase("{\"action\":\"subscribe\",\"instruments\":[\"a\"]", "invalid_message")]
    [TestCase("", "invalid_message")]
    [TestCase("\"subscribe\"", "invalid_message")]
    [TestCase("{\"action\":\"SUBSCRIBE\",\"instruments\":[]}", "unknown_action")]
    public void Parse_Rejects(string message, string code)
    {
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes(message), out _, []);
        Assert.That(error?.Code, Is.EqualTo(code));
    }

    [Test]
    public void Parse_Candles_ReadsIntervalHistoryAndInstruments()
    {
        var keys = new List<string>();
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes("{\"action\":\"subscribe\",\"channel\":\"candles\",\"interval\":\"15m\",\"history\":200,\"instruments\":[\"A|1\"]}"), out var action, keys, out var candles);
        Assert.That(error, Is.Null);
        Assert.That(action, Is.EqualTo(ClientAction.SubscribeCandles));
        Assert.That(keys, Is.EqualTo(new[] { "A|1" }));
        Assert.That(candles, Is.EqualTo(new CandleRequest(2, 200)));

        error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes("{\"instruments\":[],\"interval\":\"1d\",\"channel\":\"candles\",\"action\":\"unsubscribe\"}"), out action, keys, out candles);
        Assert.That(error, Is.Null);
        Assert.That(action, Is.EqualTo(ClientAction.UnsubscribeCandles));
        Assert.That(candles, Is.EqualTo(new CandleRequest(4, 0)), "history defaults to none");
    }

    [TestCase("{\"action\":\"subscribe\",\"channel\":\"candles\",\"instruments\":[\"A|1\"]}", "invalid_interval")]
    [TestCase("{\"action\":\"subscribe\",\"channel\":\"candles\",\"interval\":\"1M\",\"instruments\":[]}", "invalid_interval")]
    [TestCase("{\"action\":\"subscribe\",\"channel\":\"candles\",\"interval\":60,\"instruments\":[]}", "invalid_interval")]
    [TestCase("{\"action\":\"subscribe\",\"channel\":\"candles\",\"interval\":\"1m\",\"history\":-1,\"instruments\":[]}", "invalid_history")]
    [TestCase("{\"action\":\"subscribe\",\"channel\":\"candles\",\"interval\":\"1m\",\"history\":1.5,\"instruments\":[]}", "invalid_history")]
    [TestCase("{\"action\":\"subscribe\",\"channel\":\"candles\",\"interval\":\"1m\",\"history\":\"200\",\"instruments\":[]}", "invalid_history")]
    [TestCase("{\"action\":\"subscribe\",\"channel\":\"candles\",\"interval\":\"1m\",\"history\":1001,\"instruments\":[]}", "invalid_history")]
    [TestCase("{\"action\":\"subscribe\",\"channel\":\"candles\",\"interval\":\"1m\"}", "invalid_message")]
    public void Parse_Candles_Rejects(string message, string code)
    {
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes(message), out _, [], out _);
        Assert.That(error?.Code, Is.EqualTo(code));
    }
}
