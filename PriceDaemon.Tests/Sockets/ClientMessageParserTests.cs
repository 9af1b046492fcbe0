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
