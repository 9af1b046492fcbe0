using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Storage;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Storage;

/// <summary>
/// The storage service's own loop on a real LiteDB file, its flush interval driven by a <see cref="FakeTimeProvider"/>:
/// who touches the store at shutdown, and what the file holds afterwards.
/// </summary>
public sealed class StorageServiceTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";
    private static readonly TimeSpan FlushInterval = TimeSpan.FromSeconds(1);

    private string _folder = null!;

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("pricedaemon-storage-service-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    [Test]
    public async Task Stop_PastTheHostsTimeout_WhileAFlushIsInProgress_LeavesTheStoreToOneThread_AndWritesTheLastPriceOnce()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-19T10:30:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var instruments = new InstrumentRegistry([(Reliance, "RELIANCE", "Reliance", 1450.0)]);
        var cache = new PriceCache(instruments);
        var path = Path.Combine(_folder, "prices.db");
        var inside = 0;
        var overlapped = false;
        var written = new List<double>();
        var firstEntered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var storage = new StorageService(
            Options.Create(new StorageOptions { Path = path, FlushIntervalMs = (int)FlushInterval.TotalMilliseconds }),
            Options.Create(new FeedOptions()),
            cache,
            instruments,
            time,
            NullLogger<StorageService>.Instance)
        {
            BeforeWrite = batch =>
            {
                overlapped |= Interlocked.Increment(ref inside) > 1;
                bool first;
                lock (written)
                {
                    written.Add(batch.Single().LastPrice);
                    first = written.Count == 1;
                }

                if (first)
                {
                    // The first flush stays in progress until the test lets it go.
                    firstEntered.SetResult();
                    release.Task.Wait(TestClient.Timeout);
                }

                Interlocked.Decrement(ref inside);
            },
        };
        await storage.StartAsync(CancellationToken.None);
        cache.Set(Frame(instruments[0], 1451.5, seq: 1));

        // The loop arms its flush timer on its own thread: advance until a flush has begun.
        await Eventually.TrueAsync(
            () =>
            {
                time.Advance(FlushInterval);
                return firstEntered.Task.IsCompleted;
            },
            "the first flush to begin");
        cache.Set(Frame(instruments[0], 1452.05, seq: 2));

        // The host's stop timeout has already passed, as when a flush outlasts it.
        using var expired = new CancellationTokenSource();
        await expired.CancelAsync();
        await storage.StopAsync(expired.Token);
        release.SetResult();
        await Task.WhenAny(storage.ExecuteTask!).WaitAsync(TestClient.Timeout);
        // And again, as the host stops every service once more after the shutdown sequence.
        await storage.StopAsync(CancellationToken.None);

        Assert.That(overlapped, Is.False, "two threads wrote to the store at once");
        Assert.That(storage.ExecuteTask!.Status, Is.EqualTo(TaskStatus.RanToCompletion), () => $"the storage loop failed: {storage.ExecuteTask.Exception}");
        Assert.That(written, Is.EqualTo(new[] { 1451.5, 1452.05 }), "the flush in progress, then the last price exactly once");
        var (store, state) = PriceStore.Open(path);
        using (store)
        {
            Assert.That(state.Prices.Select(p => (p.Key, p.LastPrice, p.Seq)), Is.EqualTo(new[] { (Reliance, 1452.05, 2L) }));
            Assert.That(state.CleanShutdown, Is.True, "the loop finished its final flush");
        }
    }

    private static PriceFrame Frame(Instrument instrument, double price, long seq) =>
        new FrameEncoder().Encode(instrument, new Tick(instrument.Id, price, 100, 1_768_818_600_000_000 + seq, 0, PriceSource.Live), seq, instrument.ReferencePrice);
}
