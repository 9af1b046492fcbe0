using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.RegularExpressions;
using PriceDaemon.Http;
using PriceDaemon.Pipeline;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Http;

/// <summary>The exporter's record path takes no lock: nothing may be lost or go backwards for it.</summary>
public sealed partial class PrometheusExporterTests
{
    private const int PerThread = 1_000_000;

    [Test]
    public async Task Histogram_KeepsEveryMeasurement_WhenTwoThreadsRecordWhileScrapesRun()
    {
        using var meters = new TestMeterFactory();
        using var exporter = new PrometheusExporter(meters);
        // An instrument of its own on the daemon's meter: no other test's series can mix in.
        var latency = meters.Create(PipelineMetrics.MeterName).CreateHistogram<double>("pricedaemon.test.latency", "s");
        using var start = new Barrier(3);
        var recorders = Enumerable.Range(0, 2).Select(_ => Task.Factory.StartNew(
            () =>
            {
                start.SignalAndWait();
                for (var i = 0; i < PerThread; i++)
                {
                    // 0.5 ms is a bucket bound; 1/1024 s lies in the next bucket.
                    latency.Record((i & 1) == 0 ? 0.0005 : 1.0 / 1024);
                }
            },
            TaskCreationOptions.LongRunning)).ToArray();

        start.SignalAndWait();
        var scrapes = 0;
        long lastCount = 0;
        var lastBuckets = new long[15];
        while (!recorders.All(static t => t.IsCompleted) || scrapes == 0)
        {
            var text = exporter.Scrape();
            scrapes++;
            if (!text.Contains("pricedaemon_test_latency_seconds_count", StringComparison.Ordinal))
            {
                continue;
            }

            // Every bucket, and the count, only ever grow; buckets are cumulative within a scrape.
            var buckets = Buckets(text);
            Assert.That(buckets, Is.Ordered);
            Assert.That(buckets.Zip(lastBuckets, static (now, before) => now >= before), Has.All.True);
            lastBuckets = buckets;
            lastCount = Sample(text, "pricedaemon_test_latency_seconds_count");
            Assert.That(lastCount, Is.EqualTo(buckets[^1]));
        }

        await Task.WhenAll(recorders);
        var final = exporter.Scrape();
        Assert.That(Sample(final, "pricedaemon_test_latency_seconds_count"), Is.EqualTo(2 * PerThread));
        Assert.That(Buckets(final)[2], Is.EqualTo(PerThread), "le=0.0005 holds the values equal to it");
        Assert.That(Buckets(final)[3], Is.EqualTo(2 * PerThread), "le=0.001 holds 1/1024 s too");
        Assert.That(double.Parse(Regex.Match(final, @"^pricedaemon_test_latency_seconds_sum (\S+)$", RegexOptions.Multiline).Groups[1].Value, CultureInfo.InvariantCulture),
            Is.EqualTo(PerThread * (0.0005 + (1.0 / 1024))).Within(1e-6), "no addition lost, give or take rounding");
        TestContext.Out.WriteLine($"{scrapes} scrapes while recording");
    }

    [Test]
    public void Scrape_LeavesOutAnInstrument_WhenItsMeterIsDisposed()
    {
        var meters = new TestMeterFactory();
        using var exporter = new PrometheusExporter(meters);
        var meter = meters.Create(PipelineMetrics.MeterName);
        meter.CreateHistogram<double>("pricedaemon.test.disposed", "s").Record(0.001);
        meter.CreateObservableCounter("pricedaemon.test.observed", static () => 5L);
        Assert.That(exporter.Scrape(), Does.Contain("pricedaemon_test_disposed_seconds_count 1\n").And.Contain("pricedaemon_test_observed_total 5\n"));

        meters.Dispose();
        Assert.That(exporter.Scrape(), Does.Not.Contain("pricedaemon_test_"));
    }

    private static long[] Buckets(string text) =>
        [.. BucketLine().Matches(text).Select(static m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))];

    private static long Sample(string text, string name) =>
        long.Parse(Regex.Match(text, $@"^{name} (\d+)$", RegexOptions.Multiline).Groups[1].Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^pricedaemon_test_latency_seconds_bucket\{le=""[^""]+""\} (\d+)$", RegexOptions.Multiline)]
    private static partial Regex BucketLine();
}
