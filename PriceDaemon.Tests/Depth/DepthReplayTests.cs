using Microsoft.Extensions.DependencyInjection;
using PriceDaemon.Feeds;
using PriceDaemon.Feeds.Replay;
using PriceDaemon.Pipeline;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Depth;

/// <summary>Tick file format 2: order books between the trades, replayed and recorded; format 1 files read as before.</summary>
[TestFixture]
public sealed class DepthReplayTests
{
    private const string A = "NSE_EQ|INE002A01018";
    private const string B = "NSE_EQ|INE009A01021";

    private string _folder = null!;

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("pricedaemon-depth-replay-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    [TestCase(false)]
    [TestCase(true)]
    public void TickFile_RoundTripsBookLines(bool jsonLines)
    {
        var book = new TickRecord(A, 1_768_794_300_123_456, 0, 0, [new DepthLevel(2451.45, 120, 3), new DepthLevel(2451.4, 80, 0)], [new DepthLevel(2451.6, 80, 2)]);
        var line = TickFile.Format(book, jsonLines);
        var read = TickFile.Parse(line, jsonLines)!.Value;

        Assert.That(read.IsDepth, Is.True);
        Assert.That((read.InstrumentKey, read.TimeUs), Is.EqualTo((book.InstrumentKey, book.TimeUs)));
        Assert.That(read.Bids, Is.EqualTo(book.Bids));
        Assert.That(read.Asks, Is.EqualTo(book.Asks));
        Assert.That(line, Is.EqualTo(jsonLines
            ? """{"instrument_key":"NSE_EQ|INE002A01018","timestamp":"2026-01-19T03:45:00.123456Z","bids":[[2451.45,120,3],[2451.4,80,0]],"asks":[[2451.6,80,2]]}"""
            : "NSE_EQ|INE002A01018,2026-01-19T03:45:00.123456Z,depth,2451.45:120:3;2451.4:80:0,2451.6:80:2"));
    }

    [TestCase("NSE_EQ|INE002A01018,2026-01-19T03:45:00Z,depth,2451.45:120,2451.6:80:2")]
    [TestCase("NSE_EQ|INE002A01018,2026-01-19T03:45:00Z,depth,2451.45:0:1,2451.6:80:2")]
    [TestCase("NSE_EQ|INE002A01018,2026-01-19T03:45:00Z,book,2451.45:1:1,2451.6:80:2")]
    public void TickFile_RefusesABadBookLine(string line) =>
        Assert.Throws<FormatException>(() => TickFile.Parse(line, jsonLines: false));

    [Test]
    public void TickFile_ReadsAFormat1Line_AsATrade()
    {
        var read = TickFile.Parse($"{A},2026-01-19T03:45:00Z,1450.35,98765", jsonLines: false)!.Value;
        Assert.That(read.IsDepth, Is.False);
        Assert.That((read.LastPrice, read.Volume), Is.EqualTo((1450.35, 98765L)));
    }

    [Test]
    public async Task ReplayOfADepthFile_ServesItsBooks_AndRecordingKeepsThem()
    {
        var day = Path.Combine(_folder, "day.csv");
        await File.WriteAllLinesAsync(day,
        [
            TickFile.FormatComment,
            TickFile.CsvHeader,
            $"{A},2026-01-19T03:45:00Z,2451.5,100",
            $"{A},2026-01-19T03:45:00.1Z,depth,2451.45:120:3;2451.4:80:2,2451.55:50:1",
            $"{B},2026-01-19T03:45:00.2Z,1536,10",
            $"{A},2026-01-19T03:45:01Z,depth,2451.5:10:1,2451.6:20:2;2451.65:30:3",
            $"{B},2026-01-19T03:45:01.5Z,depth,1535.95:7:1,1536.05:9:1",
        ]);
        var recording = Path.Combine(_folder, "recorded.jsonl");

        await using (var daemon = await ReplayAsync(day, recording))
        {
            await AssertBooksAsync(daemon);
        }

        Assert.That(File.ReadLines(recording).Count(l => l.Contains("\"bids\"", StringComparison.Ordinal)), Is.EqualTo(3), "every book recorded");
        await using var again = await ReplayAsync(recording, null);
        await AssertBooksAsync(again);
    }

    private Task<TestDaemon> ReplayAsync(string path, string? record)
    {
        var settings = new Dictionary<string, string>
        {
            ["Feed:Source"] = "Replay",
            ["Feed:Replay:Path"] = path,
            ["Feed:Replay:Speed"] = "0",
        };
        if (record is not null)
        {
            settings["Feed:Record:Path"] = record;
        }

        return TestDaemon.StartAsync(settings);
    }

    private static async Task AssertBooksAsync(TestDaemon daemon)
    {
        var stage = daemon.Services.GetRequiredService<DepthStage>();
        // Throttle:MinIntervalMs is 0 in tests: the last book of each instrument is emitted once the stage reads it.
        await Eventually.TrueAsync(() => stage.Depth.Get(daemon.Id(A))?.Book.Asks.Length == 2 && stage.Depth.Get(daemon.Id(B)) is not null, "the last books");

        await using var client = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await client.SendAsync($$"""{"action":"subscribe","channel":"depth","instruments":["{{A}}"]}""");
        var frame = await client.NextAsync("depth");
        var data = frame.GetProperty("data");
        Assert.That(data.GetProperty("source").GetString(), Is.EqualTo("replay"));
        Assert.That(data.GetProperty("timestamp").GetString(), Is.EqualTo("2026-01-19T03:45:01.000Z"));
        Assert.That(DepthSocketTests.Levels(frame, "bids"), Is.EqualTo(new[] { new[] { 2451.5, 10, 1 } }));
        Assert.That(DepthSocketTests.Levels(frame, "asks"), Is.EqualTo(new[] { new[] { 2451.6, 20, 2 }, new[] { 2451.65, 30, 3 } }));
        Assert.That(daemon.Services.GetRequiredService<FeedMetrics>().ReplaySkippedLines, Is.Zero);
    }
}
