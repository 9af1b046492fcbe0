using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Feeds;
using PriceDaemon.Feeds.Upstox;
using PriceDaemon.Feeds.Upstox.Proto;
using PriceDaemon.Instruments;
using PriceDaemon.Tests.Support;
using FeedType = PriceDaemon.Feeds.Upstox.Proto.Type;

namespace PriceDaemon.Tests.Feeds;

/// <summary>The Upstox adapter's parts without a network: decoding, reference counts, backoff, requests.</summary>
[TestFixture]
public sealed class UpstoxUnitTests
{
    private const string Stock = "NSE_EQ|INE002A01018";
    private const string Index = "NSE_INDEX|Nifty 50";
    private const string Option = "NSE_FO|45450";

    private TestMeterFactory _meters = null!;
    private FeedMetrics _metrics = null!;
    private InstrumentRegistry _instruments = null!;

    [SetUp]
    public void SetUp()
    {
        _meters = new TestMeterFactory();
        _metrics = new FeedMetrics(_meters);
        _instruments = new InstrumentRegistry([(Stock, "RELIANCE", "Reliance", 1450.0), (Index, "NIFTY", "Nifty 50", 23000.0), (Option, "OPT", "Option", 100.0)]);
    }

    [TearDown]
    public void TearDown() => _meters.Dispose();

    [Test]
    public void Decode_TreatsAnAbsentTypeAsTheInitialFeed()
    {
        var response = new FeedResponse { Type = FeedType.InitialFeed };
        response.Feeds[Stock] = new Feed { Ltpc = new LTPC { Ltp = 1460, Ltt = 1_768_795_200_000, Ltq = 5, Cp = 1450 } };
        var bytes = response.ToByteArray();
        Assert.That(bytes[0], Is.Not.EqualTo(0x08), "proto3 leaves the zero-valued type off the wire");

        var ticks = new List<Tick>();
        var decoded = Decoder([0, 0, 0]).Decode(bytes, 42, ticks);

        Assert.That(decoded!.Type, Is.EqualTo(FeedType.InitialFeed));
        Assert.That(ticks, Is.EqualTo(new[] { new Tick(0, 1460, 0, 1_768_795_200_000_000, 42, PriceSource.Live, 1450) }));
    }

    [Test]
    public void Decode_MapsEveryFeedKind_WithFullModeVolume()
    {
        var response = new FeedResponse { Type = FeedType.LiveFeed, CurrentTs = 1_768_795_201_000 };
        response.Feeds[Stock] = new Feed { FullFeed = new FullFeed { MarketFF = new MarketFullFeed { Ltpc = new LTPC { Ltp = 1461, Ltt = 1_768_795_200_500, Cp = 1450 }, Vtt = 123_456 } } };
        response.Feeds[Index] = new Feed { FullFeed = new FullFeed { IndexFF = new IndexFullFeed { Ltpc = new LTPC { Ltp = 23100, Cp = 23000 } } } };
        response.Feeds[Option] = new Feed { FirstLevelWithGreeks = new FirstLevelWithGreeks { Ltpc = new LTPC { Ltp = 101.5, Ltt = 1_768_795_200_900 }, Vtt = 777 } };
        var volumes = new long[] { 0, 55, 0 };

        var ticks = new List<Tick>();
        Decoder(volumes).Decode(response.ToByteArray(), 1, ticks);

        var byId = ticks.ToDictionary(t => t.InstrumentId);
        Assert.That(byId[0].Volume, Is.EqualTo(123_456), "full mode: vtt is the day's volume");
        Assert.That(byId[1].Volume, Is.EqualTo(55), "an index has no volume: the last known one stays");
        Assert.That(byId[1].ExchangeTimeUs, Is.EqualTo(1_768_795_201_000_000), "no ltt: the frame's currentTs");
        Assert.That(byId[2].Volume, Is.EqualTo(777));
        Assert.That(byId[2].PreviousClose, Is.Zero, "no cp: the pipeline keeps its own close");
    }

    [Test]
    public void Decode_KeepsLastKnownVolume_InLtpcMode()
    {
        var decoder = Decoder([9000, 0, 0]);
        var ticks = new List<Tick>();

        decoder.Decode(FakeUpstox.LiveFeed((Stock, 1462, 1, 1450)).ToByteArray(), 1, ticks);

        Assert.That(ticks.Single().Volume, Is.EqualTo(9000), "ltq is one trade's quantity; it is not summed into a volume");
    }

    [Test]
    public void Decode_IgnoresUnknownFields()
    {
        var bytes = FakeUpstox.LiveFeed((Stock, 1463, 1, 1450)).ToByteArray().Concat(new byte[] { 0x98, 0x06, 0x01 }).ToArray(); // field 99 = 1
        var ticks = new List<Tick>();

        var decoded = Decoder([0, 0, 0]).Decode(bytes, 1, ticks);

        Assert.That(decoded, Is.Not.Null);
        Assert.That(ticks.Single().LastPrice, Is.EqualTo(1463));
    }

    [Test]
    public void Decode_CountsUnknownInstruments_AndSkipsUntradedOnes()
    {
        var response = FakeUpstox.LiveFeed(("NSE_EQ|NOTOURS", 10, 1, 9), (Stock, 0, 0, 1450));
        var ticks = new List<Tick>();

        Decoder([0, 0, 0]).Decode(response.ToByteArray(), 1, ticks);

        Assert.That(ticks, Is.Empty);
        Assert.That(_metrics.UnknownInstruments, Is.EqualTo(1));
    }

    [Test]
    public void Decode_ReturnsNullAndCounts_ForAMalformedFrame()
    {
        var ticks = new List<Tick>();

        var decoded = Decoder([0, 0, 0]).Decode([0x12, 0x40, 0x0A], 1, ticks);

        Assert.That(decoded, Is.Null);
        Assert.That(_metrics.MalformedFrames, Is.EqualTo(1));
    }

    [Test]
    public void Subscriptions_KeepAnInstrument_ForTheUnsubscribeDelay()
    {
        var time = new FakeTimeProvider();
        var subscriptions = Subscriptions(time, delaySeconds: 60);

        Assert.That(subscriptions.Acquire(0), Is.True);
        Assert.That(subscriptions.Acquire(0), Is.True);
        subscriptions.Release(0);
        subscriptions.Release(0);
        var (desired, next) = subscriptions.Snapshot();
        Assert.That(desired, Is.EquivalentTo(new[] { 0 }));
        Assert.That(next, Is.EqualTo(TimeSpan.FromSeconds(60)));

        time.Advance(TimeSpan.FromSeconds(59));
        Assert.That(subscriptions.Snapshot().Desired, Is.EquivalentTo(new[] { 0 }));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(subscriptions.Snapshot().Desired, Is.Empty);
    }

    [Test]
    public void Subscriptions_ReturningClient_CancelsTheLinger()
    {
        var time = new FakeTimeProvider();
        var subscriptions = Subscriptions(time, delaySeconds: 60);
        subscriptions.Acquire(0);
        subscriptions.Release(0);

        time.Advance(TimeSpan.FromSeconds(30));
        subscriptions.Acquire(0);
        time.Advance(TimeSpan.FromSeconds(60));

        Assert.That(subscriptions.Snapshot(), Is.EqualTo((subscriptions.Snapshot().Desired, Timeout.InfiniteTimeSpan)));
        Assert.That(subscriptions.Snapshot().Desired, Is.EquivalentTo(new[] { 0 }));
    }

    [Test]
    public void Subscriptions_RefuseOverTheCap_ButEvictALingeringInstrumentFirst()
    {
        var time = new FakeTimeProvider();
        var subscriptions = Subscriptions(time, delaySeconds: 60, cap: 2, always: [Index]);

        Assert.That(subscriptions.Acquire(0), Is.True);
        Assert.That(subscriptions.Acquire(2), Is.False, "the always-subscribed index and one stock fill the cap");
        Assert.That(_metrics.UpstreamRejected, Is.EqualTo(1));

        subscriptions.Release(0); // lingers, but nobody wants it
        Assert.That(subscriptions.Acquire(2), Is.True);
        Assert.That(subscriptions.Snapshot().Desired, Is.EquivalentTo(new[] { 1, 2 }));
        subscriptions.Release(1); // always subscribed: a client leaving changes nothing
        Assert.That(subscriptions.Snapshot().Desired, Is.EquivalentTo(new[] { 1, 2 }));
    }

    [Test]
    public void Backoff_GrowsExponentially_WithinMinAndMax()
    {
        var random = new Random(1);
        for (var attempt = 1; attempt < 20; attempt++)
        {
            for (var i = 0; i < 100; i++)
            {
                var delay = UpstoxFeed.Backoff(attempt, 1000, 60_000, random).TotalMilliseconds;
                Assert.That(delay, Is.InRange(1000, Math.Min(60_000, 1000 * Math.Pow(2, attempt))));
            }
        }
    }

    [Test]
    public void Request_IsTheV3JsonShape()
    {
        var json = JsonDocument.Parse(UpstoxFeed.Request("sub", "full", [Stock, Index])).RootElement;

        Assert.That(json.GetProperty("guid").GetString(), Is.Not.Empty);
        Assert.That(json.GetProperty("method").GetString(), Is.EqualTo("sub"));
        Assert.That(json.GetProperty("data").GetProperty("mode").GetString(), Is.EqualTo("full"));
        Assert.That(json.GetProperty("data").GetProperty("instrumentKeys").EnumerateArray().Select(k => k.GetString()), Is.EqualTo(new[] { Stock, Index }));
    }

    [Test]
    public void ParseRedirect_ReadsTheAuthorizedUri_AndRefusesAnswersWithout()
    {
        var body = """{"status":"success","data":{"authorized_redirect_uri":"wss://feed.example/x?code=1","authorizedRedirectUri":"wss://feed.example/x?code=1"}}""";

        Assert.That(UpstoxAuthorizer.ParseRedirect(Encoding.UTF8.GetBytes(body)), Is.EqualTo(new Uri("wss://feed.example/x?code=1")));
        Assert.Throws<InvalidDataException>(() => UpstoxAuthorizer.ParseRedirect("""{"status":"success","data":{}}"""u8));
        Assert.Throws<InvalidDataException>(() => UpstoxAuthorizer.ParseRedirect("not json"u8));
    }

    private UpstoxDecoder Decoder(long[] volumes) =>
        new(_instruments, _metrics, volumes, TimeProvider.System, NullLogger.Instance);

    private UpstoxSubscriptions Subscriptions(TimeProvider time, int delaySeconds, int cap = 0, List<string>? always = null)
    {
        var options = new FeedOptions();
        options.Upstox.UnsubscribeDelaySeconds = delaySeconds;
        options.Upstox.MaxInstruments = cap;
        options.Upstox.AlwaysSubscribe = always ?? [];
        return new UpstoxSubscriptions(_instruments, Options.Create(options), _metrics, time, NullLogger<UpstoxSubscriptions>.Instance);
    }
}
