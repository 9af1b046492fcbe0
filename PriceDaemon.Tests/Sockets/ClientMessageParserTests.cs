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

    [TestCase("{\"action\":\"subscribe\",\"timing\":true,\"instruments\":[\"A|1\"]}", true)]
    [TestCase("{\"action\":\"subscribe\",\"instruments\":[\"A|1\"],\"timing\":false}", false)]
    [TestCase("{\"action\":\"subscribe\",\"instruments\":[\"A|1\"]}", null)]
    [TestCase("{\"action\":\"unsubscribe\",\"instruments\":[\"A|1\"],\"timing\":true}", null)]
    [TestCase("{\"action\":\"subscribe\",\"channel\":\"topic\",\"topics\":[\"t\"],\"timing\":true}", null)]
    public void Parse_Timing_IsAPriceSubscribesFlag(string message, bool? expected)
    {
        var keys = new List<string>();
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes(message), out _, keys, out var timing);
        Assert.That(error, Is.Null);
        Assert.That(timing, Is.EqualTo(expected));
    }

    [TestCase("\"yes\"")]
    [TestCase("1")]
    [TestCase("null")]
    [TestCase("{}")]
    public void Parse_Timing_ThatIsNotABoolean_IsInvalid(string value)
    {
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes($"{{\"action\":\"subscribe\",\"instruments\":[],\"timing\":{value}}}"), out _, [], out var timing);
        Assert.That(error?.Code, Is.EqualTo("invalid_message"));
        Assert.That(error?.Message, Does.Contain("'timing'"));
        Assert.That(timing, Is.Null);
    }

    [TestCase("{\"action\":\"subscribe\",\"channel\":\"depth\",\"instruments\":[\"A|1\"]}", "SubscribeDepth")]
    [TestCase("{\"channel\":\"depth\",\"action\":\"unsubscribe\",\"instruments\":[\"A|1\"]}", "UnsubscribeDepth")]
    [TestCase("{\"action\":\"subscribe\",\"channel\":\"book\",\"instruments\":[\"A|1\"],\"levels\":30}", "SubscribeBook")]
    [TestCase("{\"action\":\"unsubscribe\",\"instruments\":[\"A|1\"],\"channel\":\"book\"}", "UnsubscribeBook")]
    public void Parse_DepthAndBookChannels_ReadTheirInstruments(string message, string expected)
    {
        var keys = new List<string>();
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes(message), out var action, keys);
        Assert.That(error, Is.Null);
        Assert.That(action.ToString(), Is.EqualTo(expected));
        Assert.That(keys, Is.EqualTo(new[] { "A|1" }));
    }

    [TestCase("{\"action\":\"subscribe\",\"channel\":\"depth\"}", "invalid_message")]
    [TestCase("{\"action\":\"subscribe\",\"channel\":\"depth\",\"topics\":[\"A|1\"]}", "invalid_message")]
    [TestCase("{\"action\":\"subscribe\",\"channel\":\"DEPTH\",\"instruments\":[]}", "unknown_channel")]
    public void Parse_DepthChannel_Rejects(string message, string code)
    {
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes(message), out _, []);
        Assert.That(error?.Code, Is.EqualTo(code));
    }

    [Test]
    public void Parse_Candles_ReadsIntervalHistoryAndInstruments()
    {
        var keys = new List<string>();
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes("{\"action\":\"subscribe\",\"channel\":\"candles\",\"interval\":\"15m\",\"history\":200,\"instruments\":[\"A|1\"]}"), out var action, keys, out _, out var candles);
        Assert.That(error, Is.Null);
        Assert.That(action, Is.EqualTo(ClientAction.SubscribeCandles));
        Assert.That(keys, Is.EqualTo(new[] { "A|1" }));
        Assert.That(candles, Is.EqualTo(new CandleRequest(2, 200)));

        error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes("{\"instruments\":[],\"interval\":\"1d\",\"channel\":\"candles\",\"action\":\"unsubscribe\"}"), out action, keys, out _, out candles);
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
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes(message), out _, [], out _, out _);
        Assert.That(error?.Code, Is.EqualTo(code));
    }

    [TestCase("{\"action\":\"alert_create\",\"instrument_key\":\"A|1\",\"condition\":\"above\",\"price\":2500}", "AlertCreate")]
    [TestCase("{\"action\":\"alert_list\"}", "AlertList")]
    [TestCase("{\"id\":\"al-1\",\"action\":\"alert_delete\"}", "AlertDelete")]
    [TestCase("{\"action\":\"subscribe\",\"channel\":\"volume_alerts\"}", "SubscribeVolumeAlerts")]
    [TestCase("{\"action\":\"unsubscribe\",\"channel\":\"volume_alerts\",\"instruments\":[\"A|1\"]}", "UnsubscribeVolumeAlerts")]
    public void Parse_AlertShapes(string message, string expected)
    {
        var keys = new List<string>();
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes(message), out var action, keys);
        Assert.That(error, Is.Null);
        Assert.That(action.ToString(), Is.EqualTo(expected));
    }

    [TestCase("{\"action\":\"alert_create\",\"req\":\"c-1\",\"instrument_key\":\"A|1\",\"condition\":\"above\",\"price\":1}", "c-1")]
    [TestCase("{\"req\":\"l\\u00e9\",\"action\":\"alert_list\"}", "l\u00e9")]
    [TestCase("{\"action\":\"alert_delete\",\"id\":\"al-1\",\"req\":\"\"}", "")]
    [TestCase("{\"action\":\"alert_list\",\"req\":[1],\"req\":\"last\"}", "last")]
    [TestCase("{\"action\":\"alert_list\"}", null)]
    public void Parse_AlertActions_ReadTheRequestIdToEcho(string message, string? expected)
    {
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes(message), out _, [], out _, out _, out var req);
        Assert.That(error, Is.Null);
        Assert.That(req, Is.EqualTo(expected));
    }

    [TestCase("{\"action\":\"alert_list\",\"req\":7}")]
    [TestCase("{\"action\":\"alert_create\",\"req\":null}")]
    [TestCase("{\"req\":{\"a\":1},\"action\":\"alert_delete\",\"id\":\"al-1\"}")]
    [TestCase("{\"action\":\"alert_list\",\"req\":\"\\uD800\"}")]
    [TestCase("{\"action\":\"alert_list\",\"req\":\"12345678901234567890123456789012345678901234567890123456789012345\"}")]
    [TestCase("{\"action\":\"alert_list\",\"req\":\"ok\",\"req\":false}")]
    public void Parse_AlertActions_RefuseARequestIdThatIsNotAShortString(string message)
    {
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes(message), out _, [], out _, out _, out var req);
        Assert.That(error?.Code, Is.EqualTo("invalid_message"));
        Assert.That(error?.Message, Does.Contain("'req'"));
        Assert.That(req, Is.Null);
    }

    [TestCase("{\"action\":\"subscribe\",\"instruments\":[\"A|1\"],\"req\":7}", "Subscribe")]
    [TestCase("{\"action\":\"subscribe\",\"channel\":\"volume_alerts\",\"req\":\"12345678901234567890123456789012345678901234567890123456789012345\"}", "SubscribeVolumeAlerts")]
    public void Parse_OtherActions_SkipABadRequestId_AsBefore(string message, string expected)
    {
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes(message), out var action, [], out _, out _, out _);
        Assert.That(error, Is.Null);
        Assert.That(action.ToString(), Is.EqualTo(expected));
    }

    [Test]
    public void Parse_AnErrorAfterTheRequestId_StillNamesIt()
    {
        var error = ClientMessageParser.Parse("{\"action\":\"alert_list\",\"req\":\"r-9\",\"instruments\":5}"u8, out _, [], out _, out _, out var req);
        Assert.That(error?.Code, Is.EqualTo("invalid_message"));
        Assert.That(req, Is.EqualTo("r-9"));
    }

    [TestCase(null, "{\"type\":\"error\",\"code\":\"x\",\"message\":\"m\"}")]
    [TestCase("r-1", "{\"type\":\"error\",\"code\":\"x\",\"message\":\"m\",\"req\":\"r-1\"}")]
    [TestCase("a\"b\\c\u00e9\n", "{\"type\":\"error\",\"code\":\"x\",\"message\":\"m\",\"req\":\"a\\\"b\\\\c\u00e9\\n\"}")]
    public void WithReq_AddsTheRequestId_AsTheLastFieldOfTheFrame(string? req, string expected)
    {
        var frame = ControlFrames.WithReq(ControlFrames.Error("x", "m"), req);
        Assert.That(Encoding.UTF8.GetString(frame), Is.EqualTo(expected));
        using var document = System.Text.Json.JsonDocument.Parse(frame);
        Assert.That(document.RootElement.TryGetProperty("req", out var echoed) ? echoed.GetString() : null, Is.EqualTo(req));
    }

    [Test]
    public void AlertRequest_ReadsEveryField_AndNamesWhatIsWrong()
    {
        var request = PriceDaemon.Alerts.AlertRequest.Parse(Encoding.UTF8.GetBytes(
            "{\"action\":\"alert_create\",\"instrument_key\":\"A|1\",\"condition\":\"change_pct_below\",\"percent\":-2.5,\"repeat\":true,\"note\":\"dip\",\"x\":[1]}"),
            create: true, maxNote: 10, out var error);
        Assert.That(error, Is.Empty);
        Assert.That(request, Is.EqualTo(new PriceDaemon.Alerts.AlertRequest("A|1", PriceDaemon.Alerts.AlertCondition.ChangePctBelow, -2.5, true, "dip", null)));

        Assert.That(PriceDaemon.Alerts.AlertRequest.Parse(Encoding.UTF8.GetBytes("{\"instrument_key\":\"A|1\",\"condition\":\"above\",\"price\":1,\"note\":\"far too long a note\"}"), true, 10, out error), Is.Null);
        Assert.That(error, Does.Contain("note"));
        Assert.That(PriceDaemon.Alerts.AlertRequest.Parse(Encoding.UTF8.GetBytes("{\"instrument_key\":\"A|1\",\"condition\":\"above\",\"price\":-1}"), true, 10, out error), Is.Null);
        Assert.That(error, Does.Contain("positive"));
        Assert.That(PriceDaemon.Alerts.AlertRequest.Parse(Encoding.UTF8.GetBytes("{\"instrument_key\":\"A|1\",\"condition\":\"above\",\"price\":1,\"repeat\":\"yes\"}"), true, 10, out error), Is.Null);
        Assert.That(error, Does.Contain("repeat"));
        Assert.That(PriceDaemon.Alerts.AlertRequest.Parse(Encoding.UTF8.GetBytes("{\"instrument_key\":\"A|1\",\"condition\":\"above\",\"price\":1e999}"), true, 10, out error), Is.Null);
        Assert.That(PriceDaemon.Alerts.AlertRequest.Parse(Encoding.UTF8.GetBytes("{\"id\":\"\\uD800\"}"), false, 10, out error), Is.Null, "an undecodable string is an error, not an exception");
    }
}
