using PriceDaemon.Candles;

namespace PriceDaemon.Tests.Candles;

/// <summary>The candle file's forming state: packed chunks that round-trip and shrink with the instrument list.</summary>
public sealed class CandleStoreTests
{
    private string _folder = null!;

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("pricedaemon-candles-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    [Test]
    public void Forming_RoundTripsEveryField_AndChunksPastTheLastAreDeleted()
    {
        var bars = new Bar[CandleIntervals.Count];
        bars[0] = new Bar { StartUs = 1_764_560_100_000_000, EndUs = 1_764_560_160_000_000, Open = 1450.5, High = 1452.25, Low = 1449.05, Close = 1451, Volume = 12_345, Forming = true };
        bars[4] = new Bar { StartUs = 1_764_560_000_000_000, EndUs = 1_764_582_600_000_000, Open = 1440, High = 1460, Low = 1430.5, Close = 1451, Volume = 9_876_543, Forming = false };
        var none = new Bar[CandleIntervals.Count];
        var pack = new byte[8]; // grows as it is filled
        var length = 0;
        CandleStore.AppendForming(ref pack, ref length, "NSE_EQ|INE002A01018", bars, 9_876_543, 20_424);
        CandleStore.AppendForming(ref pack, ref length, "NSE_EQ|ÄÖ→✓", none, 77, 20_424);
        var first = pack.AsSpan(0, length).ToArray();
        length = 0;
        CandleStore.AppendForming(ref pack, ref length, "NSE_EQ|INE467B01029", none, 5, 20_423);

        var path = Path.Combine(_folder, "candles.db");
        using (var store = CandleStore.Open(path))
        {
            store.Write([], [(0, first), (1, pack.AsSpan(0, length).ToArray())]);
        }

        using (var store = CandleStore.Open(path))
        {
            var loaded = store.LoadForming().ToDictionary(f => f.Key);
            Assert.That(loaded.Keys, Is.EquivalentTo(new[] { "NSE_EQ|INE002A01018", "NSE_EQ|ÄÖ→✓", "NSE_EQ|INE467B01029" }));
            var reliance = loaded["NSE_EQ|INE002A01018"];
            Assert.That(reliance.Bars, Is.EqualTo(bars), "every bar field, and the intervals without a bar stay empty");
            Assert.That((reliance.CumulativeVolume, reliance.VolumeDay), Is.EqualTo((9_876_543L, 20_424)));
            Assert.That(loaded["NSE_EQ|ÄÖ→✓"].Bars.All(b => !b.Exists), Is.True);
            Assert.That(loaded["NSE_EQ|ÄÖ→✓"].CumulativeVolume, Is.EqualTo(77));

            // The instrument list shrank to one chunk: rewriting it drops chunk 1.
            store.Write([], [(0, first)], formingChunks: 1);
            Assert.That(store.LoadForming().Select(f => f.Key), Is.EquivalentTo(new[] { "NSE_EQ|INE002A01018", "NSE_EQ|ÄÖ→✓" }));
        }
    }
}
