using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using PriceDaemon.Benchmarks.EndToEnd;
using PriceDaemon.Feeds;
using PriceDaemon.Nats;
using PriceDaemon.Pipeline;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Http;

/// <summary>
/// Pins the series <c>GET /metrics</c> serves, as dashboards, alerts and the benchmark harness read them:
/// family names with their suffixes, types, label names and histogram bucket boundaries. Taken from a scrape
/// of the daemon as it was before its exporter was rewritten, so no later change of exporter can rename,
/// retype or rebucket a series without this failing.
/// </summary>
public sealed partial class MetricsSeriesTests
{
    private const string Buckets = "le=0.0001,0.00025,0.0005,0.001,0.0025,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,+Inf";

    // The daemon's own meter: every family, nothing more (a new one is added here on purpose).
    private static readonly string[] _daemonFamilies =
    [
        $"pricedaemon_send_latency_seconds histogram {Buckets}",
        $"pricedaemon_nats_hop_latency_seconds histogram {Buckets}",
        "pricedaemon_candles_closed_total counter",
        "pricedaemon_candles_late_ticks_total counter",
        "pricedaemon_candles_published_total counter",
        "pricedaemon_alerts_conflicts_total counter",
        "pricedaemon_alerts_count gauge",
        "pricedaemon_alerts_deferred_total counter",
        "pricedaemon_alerts_fired_total counter",
        "pricedaemon_alerts_notified_total counter",
        "pricedaemon_client_errors_total counter",
        "pricedaemon_depth_books_total counter",
        "pricedaemon_depth_coalesced_total counter",
        "pricedaemon_depth_updates_total counter",
        "pricedaemon_feed_auth_failures_total counter",
        "pricedaemon_feed_connected gauge",
        "pricedaemon_feed_connects_total counter",
        "pricedaemon_feed_disconnects_total counter",
        "pricedaemon_feed_malformed_frames_total counter",
        "pricedaemon_feed_record_dropped_total counter",
        "pricedaemon_feed_recorded_total counter",
        "pricedaemon_feed_replay_skipped_lines_total counter",
        "pricedaemon_feed_stalls_total counter",
        "pricedaemon_feed_unknown_instruments_total counter",
        "pricedaemon_feed_upstream_rejected_total counter",
        "pricedaemon_frames_conflated_total counter",
        "pricedaemon_frames_sent_total counter",
        "pricedaemon_nats_connects_total counter",
        "pricedaemon_nats_disconnects_total counter",
        "pricedaemon_nats_kv_applied_total counter",
        "pricedaemon_nats_kv_put_failures_total counter",
        "pricedaemon_nats_kv_puts_total counter",
        "pricedaemon_nats_publish_dropped_total counter",
        "pricedaemon_nats_published_total counter",
        "pricedaemon_nats_push_deduped_total counter kind",
        "pricedaemon_nats_push_published_total counter kind",
        "pricedaemon_nats_push_received_total counter kind",
        "pricedaemon_nats_push_unavailable_total counter",
        "pricedaemon_nats_push_write_failures_total counter",
        "pricedaemon_nats_receive_dropped_total counter",
        "pricedaemon_nats_received_total counter",
        "pricedaemon_pool_frames_created_total counter",
        "pricedaemon_pool_frames_dropped_total counter",
        "pricedaemon_pool_frames_retired gauge",
        "pricedaemon_pool_oldest_reader_age gauge",
        "pricedaemon_send_errors_total counter",
        "pricedaemon_sessions_active gauge",
        "pricedaemon_sessions_opened_total counter",
        "pricedaemon_sessions_slow_consumer_closed_total counter",
        "pricedaemon_sessions_slow_consumer_warned_total counter",
        "pricedaemon_socket_writes_total counter",
        "pricedaemon_sockets_handshakes_total counter path",
        "pricedaemon_subscriptions gauge",
        "pricedaemon_ticks_coalesced_total counter",
        "pricedaemon_ticks_received_total counter",
        "pricedaemon_updates_emitted_total counter",
    ];

    // The runtime's System.Runtime meter as .NET 10 publishes it: these stay; a newer runtime may add more.
    private static readonly string[] _runtimeFamilies =
    [
        "dotnet_assembly_count gauge",
        "dotnet_exceptions_total counter error_type",
        "dotnet_gc_collections_total counter gc_heap_generation",
        "dotnet_gc_heap_total_allocated_bytes_total counter",
        "dotnet_gc_last_collection_heap_fragmentation_size_bytes gauge gc_heap_generation",
        "dotnet_gc_last_collection_heap_size_bytes gauge gc_heap_generation",
        "dotnet_gc_last_collection_memory_committed_size_bytes gauge",
        "dotnet_gc_pause_time_seconds_total counter",
        "dotnet_jit_compilation_time_seconds_total counter",
        "dotnet_jit_compiled_il_size_bytes_total counter",
        "dotnet_jit_compiled_methods_total counter",
        "dotnet_monitor_lock_contentions_total counter",
        "dotnet_process_cpu_count gauge",
        "dotnet_process_cpu_time_seconds_total counter cpu_mode",
        "dotnet_process_memory_working_set_bytes gauge",
        "dotnet_thread_pool_queue_length_total counter",
        "dotnet_thread_pool_thread_count_total counter",
        "dotnet_thread_pool_work_item_count_total counter",
        "dotnet_timer_count gauge",
    ];

    [Test]
    public async Task Metrics_ServeThePinnedSeries_WithEveryInstrumentRecording()
    {
        await using var daemon = await TestDaemon.StartAsync();
        var text = await ScrapeWithEveryInstrumentAsync(daemon);

        var families = Families(text);
        Assert.That(families.Where(f => f.StartsWith("pricedaemon_", StringComparison.Ordinal)), Is.EquivalentTo(_daemonFamilies));
        Assert.That(_runtimeFamilies, Is.SubsetOf(families));
    }

    [Test]
    public async Task Metrics_HistogramBucketsAreCumulative_AndInclusiveOfTheirBound()
    {
        await using var daemon = await TestDaemon.StartAsync();
        var latency = daemon.Services.GetRequiredService<PipelineMetrics>().SendLatency;
        latency.Record(0.0025);
        latency.Record(0.003);
        latency.Record(7);

        using var http = daemon.Http();
        var text = await http.GetStringAsync("/metrics");
        Assert.That(text, Does.Contain("pricedaemon_send_latency_seconds_bucket{le=\"0.001\"} 0\n"));
        Assert.That(text, Does.Contain("pricedaemon_send_latency_seconds_bucket{le=\"0.0025\"} 1\n"));
        Assert.That(text, Does.Contain("pricedaemon_send_latency_seconds_bucket{le=\"0.005\"} 2\n"));
        Assert.That(text, Does.Contain("pricedaemon_send_latency_seconds_bucket{le=\"2.5\"} 2\n"));
        Assert.That(text, Does.Contain("pricedaemon_send_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
        Assert.That(text, Does.Contain("pricedaemon_send_latency_seconds_count 3\n"));
        // Kept per processor and added up when scraped: the same sum, give or take rounding.
        var sum = Regex.Match(text, @"^pricedaemon_send_latency_seconds_sum (\S+)$", RegexOptions.Multiline).Groups[1].Value;
        Assert.That(double.Parse(sum, CultureInfo.InvariantCulture), Is.EqualTo(7.0055).Within(1e-12));
    }

    [Test]
    public async Task Metrics_AreReadByTheBenchmarkHarness_InThePrometheusTextFormat()
    {
        await using var daemon = await TestDaemon.StartAsync();
        daemon.Services.GetRequiredService<PipelineMetrics>().SendLatency.Record(0.003);

        using var http = daemon.Http();
        using var response = await http.GetAsync("/metrics");
        Assert.That(response.Content.Headers.ContentType?.ToString(), Is.EqualTo("text/plain; version=0.0.4; charset=utf-8"));
        Assert.That(DaemonCounters.Parse(await response.Content.ReadAsStringAsync()), Is.Not.Null);
    }

    /// <summary>
    /// A scrape in which every instrument of the daemon's meter has reported: the feed and NATS instruments are
    /// made on the host's meter factory as their services would make them, and each histogram and the
    /// runtime's exception counter (both shown once recorded) get one measurement.
    /// </summary>
    private static async Task<string> ScrapeWithEveryInstrumentAsync(TestDaemon daemon)
    {
        var factory = daemon.Services.GetRequiredService<IMeterFactory>();
        _ = new FeedMetrics(factory);
        new NatsMetrics(factory).HopLatency.Record(0.003);
        daemon.Services.GetRequiredService<PipelineMetrics>().SendLatency.Record(0.003);
        try
        {
            throw new InvalidOperationException("counted by System.Runtime");
        }
        catch (InvalidOperationException)
        {
        }

        using var http = daemon.Http();
        return await http.GetStringAsync("/metrics");
    }

    /// <summary>
    /// One line per family: <c>name type [label names]</c>, with the bucket bounds for a histogram. Fails on a
    /// sample that belongs to no declared family.
    /// </summary>
    private static List<string> Families(string exposition)
    {
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var labels = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        var bounds = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var line in exposition.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (TypeLine().Match(line) is { Success: true } type)
            {
                types[type.Groups["name"].Value] = type.Groups["type"].Value;
                labels[type.Groups["name"].Value] = new SortedSet<string>(StringComparer.Ordinal);
                continue;
            }

            if (line.StartsWith('#'))
            {
                continue;
            }

            var sample = SampleLine().Match(line);
            Assert.That(sample.Success, Is.True, $"not a sample line: {line}");
            var name = sample.Groups["name"].Value;
            var family = types.ContainsKey(name) ? name : HistogramFamily(name, types);
            Assert.That(family, Is.Not.Null, $"sample of no declared family: {line}");
            foreach (Match label in Label().Matches(sample.Groups["labels"].Value))
            {
                if (label.Groups["key"].Value != "le")
                {
                    labels[family!].Add(label.Groups["key"].Value);
                }
                else if (!bounds.TryGetValue(family!, out var list) || !list.Contains(label.Groups["value"].Value))
                {
                    (bounds.TryGetValue(family!, out list) ? list : bounds[family!] = []).Add(label.Groups["value"].Value);
                }
            }
        }

        return [.. types.Select(t => string.Join(' ', new[]
        {
            t.Key,
            t.Value,
            string.Join(',', labels[t.Key]),
            bounds.TryGetValue(t.Key, out var le) ? "le=" + string.Join(',', le) : "",
        }.Where(part => part.Length > 0)))];
    }

    private static string? HistogramFamily(string sample, Dictionary<string, string> types)
    {
        foreach (var suffix in (string[])["_bucket", "_sum", "_count"])
        {
            if (sample.EndsWith(suffix, StringComparison.Ordinal) && types.GetValueOrDefault(sample[..^suffix.Length]) == "histogram")
            {
                return sample[..^suffix.Length];
            }
        }

        return null;
    }

    [GeneratedRegex(@"^# TYPE (?<name>\S+) (?<type>\S+)$")]
    private static partial Regex TypeLine();

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?<labels>\{.*\})? \S+$")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"(?<key>[a-zA-Z_][a-zA-Z0-9_]*)=""(?<value>(?:[^""\\]|\\.)*)""")]
    private static partial Regex Label();
}
