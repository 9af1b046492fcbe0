using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Pipeline;
using PriceDaemon.Sockets;
using PriceDaemon.Tests.Security;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Sockets;

/// <summary>
/// Flow control with a real socket: a client that reads a fixed number of bytes per second through a small receive
/// buffer, less than the daemon sends it at full rate. The daemon's clock is fake, so "a second" is one step of the
/// test: the ticks of that second, the client's read, then the clock moves and the sweeper looks.
/// </summary>
public sealed class SlowConsumerTests
{
    private const int BytesPerSecond = 16 * 1024;

    private static readonly string[] Keys =
    [
        "NSE_EQ|INE002A01018", "NSE_EQ|INE467B01029", "NSE_EQ|INE009A01021", "NSE_EQ|INE040A01034", "NSE_EQ|INE090A01021",
        "NSE_EQ|INE062A01020", "NSE_EQ|INE154A01025", "NSE_EQ|INE397D01024", "NSE_EQ|INE030A01027", "NSE_EQ|INE018A01030",
    ];

    [Test]
    public async Task AClientReadingSlowly_IsWarned_KeepsGettingEveryInstrumentDownsampled_IsNotClosed_AndRecovers()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var daemon = await TestDaemon.StartAsync(
            new Dictionary<string, string>
            {
                ["Limits:SlowConsumerWarnSeconds"] = "2",
                ["Limits:SlowConsumerSeconds"] = "10",
                ["Limits:SlowConsumerIntervalMs"] = "1000",
                ["Limits:SlowConsumerRecoverSeconds"] = "20",
            },
            time,
            TestDaemon.SmallSendBuffers);
        var registry = daemon.Services.GetRequiredService<SessionRegistry>();
        var cache = daemon.Services.GetRequiredService<PriceCache>();
        var feed = new Feed(daemon);
        using var client = await RawWebSocket.ConnectAsync(daemon.BaseUri, receiveBufferSize: 4096);
        var seen = new Received(client);
        await client.SendTextAsync(JsonSerializer.Serialize(new { action = "subscribe", instruments = Keys }));
        await Eventually.TrueAsync(() => registry.Sessions.SingleOrDefault()?.SubscriptionCount == Keys.Length, () => "subscribed");
        var session = registry.Sessions.Single();

        // Full rate: the daemon sends more than the client reads, so a write is pending whenever the clock moves.
        for (var second = 0; second < 10 && !session.IsDownsampled; second++)
        {
            await feed.UntilStalledAsync(session);
            await ReadFullBudgetAsync(seen, feed, session);
            await feed.UntilStalledAsync(session);
            if (session.IsDownsampled)
            {
                break; // warned by the sweep of the last step, after the loop looked
            }

            time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.That(session.IsDownsampled, Is.True, "not warned while behind");

        // Downsampled: the feed goes on at 20 ticks per instrument a second; the client reads at the same fixed rate.
        var perSecond = new List<int[]>();
        for (var second = 0; second < 15; second++)
        {
            await feed.TicksAsync(20);
            // TryGetValues: the cached frames are pooled, a bare read may see one refilled with another instrument's price.
            await Eventually.TrueAsync(() => Keys.All(k => cache.TryGetValues(daemon.Id(k), out var cached) && cached.LastPrice == feed.Last[k]), () => "ticks through the throttle");
            var newest = Keys.ToDictionary(k => k, k => cache.TryGetValues(daemon.Id(k), out var cached) ? cached.Seq : throw new AssertionException($"{k} not cached"));
            var before = Keys.Select(k => seen.SeqsOf(k).Count).ToArray();
            time.Advance(TimeSpan.FromSeconds(1)); // a round is due: the newest of each instrument

            var budget = BytesPerSecond;
            await Eventually.TrueAsync(
                () =>
                {
                    budget -= seen.Read(budget);
                    return budget == 0 || Keys.All(k => seen.SeqsOf(k) is { Count: > 0 } s && s[^1] >= newest[k]);
                },
                () => $"second {second}: the round did not arrive; {budget} bytes of budget left");
            perSecond.Add(Keys.Select((k, i) => seen.SeqsOf(k).Count - before[i]).ToArray());
        }

        Assert.That(seen.Of("warning").Single().GetProperty("code").GetString(), Is.EqualTo("slow_consumer"));
        Assert.That(session.IsClosing, Is.False, "closed although it keeps up at the lower rate (15 s > SlowConsumerSeconds)");
        Assert.That(seen.Of("error"), Is.Empty);
        Assert.That(session.IsDownsampled, Is.True);
        foreach (var (counts, second) in perSecond.Select((c, i) => (c, i)).TakeLast(5))
        {
            Assert.That(counts, Is.All.EqualTo(1), $"second {second}: one price per instrument per second, of 20 ticks each");
        }

        foreach (var key in Keys)
        {
            Assert.That(seen.SeqsOf(key), Is.Ordered.Ascending.And.Unique, $"{key}: an older price after a newer one");
            Assert.That(seen.PricesOf(key)[^1], Is.EqualTo(feed.Last[key]), $"{key}: not the last value");
        }

        // Quiet, and read in full: after the recover time it is back to full rate, told so, and a tick goes out at once.
        for (var second = 0; second < 30 && session.IsDownsampled; second++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Eventually.TrueAsync(() => seen.Read(BytesPerSecond) == 0 && !session.IsStalled(long.MaxValue, 0), () => "draining");
        }

        Assert.That(session.IsDownsampled, Is.False, "never recovered");
        await Eventually.TrueAsync(() => seen.Read(BytesPerSecond) >= 0 && seen.Of("warning_cleared").Count == 1, () => "no warning_cleared frame");
        await feed.TicksAsync(1);
        await Eventually.TrueAsync(() => seen.Read(BytesPerSecond) >= 0 && Keys.All(k => seen.PricesOf(k)[^1] == feed.Last[k]), () => "full rate: the ticks go out with the clock standing still");
    }

    /// <summary>One second of the slow client at full rate: it reads its whole budget, the feed refilling what the daemon has to send.</summary>
    private static async Task ReadFullBudgetAsync(Received seen, Feed feed, PriceSession session)
    {
        var budget = BytesPerSecond;
        for (var poll = 0; poll < 2_000 && budget > 0; poll++)
        {
            if (session.IsDownsampled)
            {
                return; // the sweep of the last clock step warned it: the full-rate second is over
            }

            budget -= seen.Read(budget);
            if (budget > 0 && !session.IsStalled(long.MaxValue, 0))
            {
                await feed.UntilStalledAsync(session);
            }
            else if (budget > 0)
            {
                await Task.Delay(10); // a poll: the kernel reopens a small window late (its zero-window probe)
            }
        }

        Assert.That(budget, Is.Zero, "the client could not read its budget");
    }

    /// <summary>The test's feed: rising prices, round robin over <see cref="Keys"/>.</summary>
    private sealed class Feed(TestDaemon daemon)
    {
        private double _price = 100;

        public Dictionary<string, double> Last { get; } = [];

        public async Task TicksAsync(int perInstrument)
        {
            for (var i = 0; i < perInstrument * Keys.Length; i++)
            {
                _price = Math.Round(_price + 0.05, 2);
                var key = Keys[i % Keys.Length];
                Last[key] = _price;
                await daemon.TickAsync(key, _price, i);
            }
        }

        /// <summary>
        /// Ticks until the session's write is stuck: the kernel's buffers are full. Or until it is downsampled: the sweep
        /// that a clock step starts runs on its own, and may warn the session after the caller last looked; a downsampled
        /// session sends nothing more while the clock stands still, so it cannot be stalled by ticks.
        /// </summary>
        public async Task UntilStalledAsync(PriceSession session)
        {
            for (var round = 0; round < 20_000 && !session.IsStalled(long.MaxValue, 0) && !session.IsDownsampled; round++)
            {
                await TicksAsync(1);
                await Task.Yield(); // let the writer take them, so frames go out instead of all conflating
            }

            Assert.That(session.IsStalled(long.MaxValue, 0) || session.IsDownsampled, Is.True, $"could not fill the socket's buffers (queued {session.QueuedCount}, downsampled {session.IsDownsampled}, closing {session.IsClosing})");
        }
    }

    /// <summary>Every text frame the client read, parsed.</summary>
    private sealed class Received(RawWebSocket client)
    {
        private readonly List<JsonElement> _frames = [];

        public int Read(int maxBytes)
        {
            var read = client.ReadAvailable(maxBytes);
            while (client.TakeFrame() is { } frame)
            {
                if (frame.Opcode == RawWebSocket.Text)
                {
                    _frames.Add(JsonDocument.Parse(Encoding.UTF8.GetString(frame.Payload)).RootElement);
                }
            }

            return read;
        }

        public List<JsonElement> Of(string type) => _frames.Where(f => f.GetProperty("type").GetString() == type).ToList();

        private IEnumerable<JsonElement> Data(string key) =>
            Of("price_update").Where(f => f.GetProperty("instrument_key").GetString() == key).Select(f => f.GetProperty("data"));

        public List<long> SeqsOf(string key) => Data(key).Select(d => d.GetProperty("seq").GetInt64()).ToList();

        public List<double> PricesOf(string key) => Data(key).Select(d => d.GetProperty("last_price").GetDouble()).ToList();
    }
}
