using System.Threading.Channels;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Feeds;

/// <summary>The simulated feed's grouped mode: ticks arrive as Upstox delivers them, many instruments per message.</summary>
public sealed class SimulatedFeedTests
{
    [Test]
    public async Task GroupedMode_DeliversMessagesOfRandomDistinctInstruments_AtTheConfiguredRate_EachReceivedAtOnce()
    {
        var instruments = new InstrumentRegistry(Enumerable.Range(0, 40).Select(i => ($"NSE_EQ|SIM{i:D3}", $"S{i}", $"Sim {i}", 100.0 + i)));
        var options = new FeedOptions { Simulated = { Seed = 7, MessagesPerSecond = 5, InstrumentsPerMessageMin = 5, InstrumentsPerMessageMax = 12 } };
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-01T04:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var feed = new SimulatedFeed(instruments, Options.Create(options), new FeedStatus(), new PriceCache(instruments), time, NullLogger<SimulatedFeed>.Instance);
        var ticks = Channel.CreateUnbounded<Tick>();
        using var stop = new CancellationTokenSource();
        var run = feed.RunAsync(ticks.Writer, stop.Token);

        var initial = await ReadAsync(ticks.Reader, instruments.Count);
        Assert.That(initial.Select(static t => t.InstrumentId), Is.EquivalentTo(Enumerable.Range(0, 40)), "the initial feed: every instrument once");

        // Eleven message periods. Each advance waits for the first tick of its message, which the feed stamps
        // before writing any of it: a message's ticks share one receive time, and no two messages do. The
        // eleventh only proves the tenth was written whole.
        var received = new List<Tick>();
        for (var m = 0; m < 11; m++)
        {
            var before = received.Select(static t => t.ReceivedTimestamp).Distinct().Count();
            time.Advance(TimeSpan.FromMilliseconds(200));
            await Eventually.TrueAsync(
                () =>
                {
                    while (ticks.Reader.TryRead(out var tick))
                    {
                        received.Add(tick);
                    }

                    return received.Select(static t => t.ReceivedTimestamp).Distinct().Count() > before;
                },
                () => $"message {m}: {received.Count} ticks so far");
        }

        await stop.CancelAsync();
        await run.WaitAsync(TestClient.Timeout).ContinueWith(static _ => { }, TaskScheduler.Default);
        var messages = received.GroupBy(static t => t.ReceivedTimestamp).OrderBy(static g => g.Key).Take(10).Select(static g => g.ToArray()).ToList();
        var stamps = received.Select(static t => t.ReceivedTimestamp).Distinct().Order().ToList();
        Assert.That(stamps.Zip(stamps.Skip(1), (a, b) => time.GetElapsedTime(a, b)), Is.All.EqualTo(TimeSpan.FromMilliseconds(200)), "five messages a second");

        Assert.That(messages.Select(static m => m.Length), Is.All.InRange(5, 12));
        Assert.That(messages.Select(static m => m.Length).Distinct().Count(), Is.GreaterThan(1), "sizes are drawn per message");
        Assert.That(messages.Select(static m => m.Select(static t => t.InstrumentId).Distinct().Count() == m.Length), Is.All.True, "no instrument twice in a message");
        Assert.That(messages.Select(static m => m.Select(static t => t.ReceivedTimestamp).Distinct().Count()), Is.All.EqualTo(1), "a message is received at one moment");
        Assert.That(messages.SelectMany(static m => m).Select(static t => t.InstrumentId).Distinct().Count(), Is.GreaterThan(20), "messages pick different instruments");
    }

    private static async Task<List<Tick>> ReadAsync(ChannelReader<Tick> reader, int count)
    {
        var read = new List<Tick>();
        while (read.Count < count)
        {
            read.Add(await reader.ReadAsync().AsTask().WaitAsync(TestClient.Timeout));
        }

        return read;
    }
}
