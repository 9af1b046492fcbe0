using PriceDaemon.Benchmarks.EndToEnd;

namespace PriceDaemon.Tests.Benchmarks;

public sealed class ConsistencyTests
{
    private static readonly Dictionary<string, PriceVersion> Daemon = new(StringComparer.Ordinal)
    {
        ["A"] = new PriceVersion(10, 101.5),
        ["B"] = new PriceVersion(7, 55.05),
    };

    [Test]
    public void Check_CountsCurrent_WhenClientHoldsTheDaemonsSeqAndPrice()
    {
        var result = Consistency.Check(Daemon, [new ClientLastValue(0, "A", new PriceVersion(10, 101.5))]);
        Assert.That((result.Checked, result.Current, result.Failures), Is.EqualTo((1, 1, 0)));
    }

    [Test]
    public void Check_CountsNewer_WhenAFresherUpdateArrivedAfterTheRestRead()
    {
        var result = Consistency.Check(Daemon, [new ClientLastValue(0, "A", new PriceVersion(11, 102))]);
        Assert.That((result.Newer, result.Failures), Is.EqualTo((1, 0)));
    }

    [Test]
    public void Check_CountsLost_WhenClientIsBehindOrReceivedNothing()
    {
        var result = Consistency.Check(Daemon,
        [
            new ClientLastValue(0, "A", new PriceVersion(9, 101)),
            new ClientLastValue(1, "B", null),
        ]);

        Assert.That((result.Lost, result.Failures, result.Examples.Count), Is.EqualTo((2, 2, 2)));
        Assert.That(result.Examples[1], Is.EqualTo("client 1 B: has seq none, daemon had seq 7"));
    }

    [Test]
    public void Check_CountsWrongPrice_WhenSeqMatchesButPriceDiffers()
    {
        var result = Consistency.Check(Daemon, [new ClientLastValue(3, "B", new PriceVersion(7, 55.10))]);
        Assert.That((result.WrongPrice, result.Failures), Is.EqualTo((1, 1)));
    }

    [Test]
    public void Check_SkipsInstruments_TheDaemonHasNoPriceFor()
    {
        var result = Consistency.Check(Daemon, [new ClientLastValue(0, "C", null)]);
        Assert.That((result.Checked, result.Failures), Is.EqualTo((0, 0)));
    }
}
