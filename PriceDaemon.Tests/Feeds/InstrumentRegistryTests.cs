using PriceDaemon.Instruments;

namespace PriceDaemon.Tests.Feeds;

public sealed class InstrumentRegistryTests
{
    [Test]
    public void Load_AddsSyntheticInstruments_AfterTheListed()
    {
        var csv = "instrument_key,symbol,name,reference_price\nNSE_EQ|INE002A01018,RELIANCE,Reliance Industries,1451.50\n";
        var registry = InstrumentRegistry.Load(new StringReader(csv), "test.csv", synthetic: 3);
        Assert.That(registry.Count, Is.EqualTo(4));
        Assert.That(registry[1].Key, Is.EqualTo("NSE_EQ|SYN0000001"));
        Assert.That(registry.TryGet("NSE_EQ|SYN0000003".AsSpan(), out var last), Is.True);
        Assert.That(last.Id, Is.EqualTo(3));
    }

    [TestCase("instrument_key,symbol,name,reference_price\nNSE_EQ|X,X,X,abc\n", "test.csv:2")]
    [TestCase("instrument_key,symbol,name,reference_price\nNSE_EQ|X,X,X,-1\n", "test.csv:2")]
    [TestCase("key,price\n", "header")]
    public void Load_RejectsBadRows_NamingTheLine(string csv, string expected)
    {
        var error = Assert.Throws<InvalidDataException>(() => InstrumentRegistry.Load(new StringReader(csv), "test.csv", 0));
        Assert.That(error!.Message, Does.Contain(expected));
    }

    [Test]
    public void Constructor_RejectsDuplicateKeys()
    {
        Assert.Throws<InvalidDataException>(() => _ = new InstrumentRegistry([("A|1", "A", "A", 1.0), ("A|1", "B", "B", 2.0)]));
    }
}
