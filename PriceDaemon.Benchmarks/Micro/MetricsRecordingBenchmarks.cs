using System.Diagnostics.Metrics;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using PriceDaemon.Http;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Benchmarks.Micro;

/// <summary>
/// What one measurement costs the thread that records it, with each candidate exporter listening: the send
/// latency histogram is recorded after every socket write of every send thread, so this is a hot-path cost.
/// The concurrent cases run two recording threads while a third scrapes <c>GET /metrics</c> over loopback
/// HTTP once a millisecond (a real Prometheus scrapes every 15 s or so; this is the worst case for a lock a
/// scrape shares with the recorders). Every exporter also exports the runtime's <c>System.Runtime</c> meter,
/// as the daemon does, so a scrape is as big as the daemon's.
/// </summary>
[MemoryDiagnoser]
public class MetricsRecordingBenchmarks
{
    private const int PerThread = 100_000;

    private BenchmarkMeterFactory _meters = null!;
    private Histogram<double> _histogram = null!;
    private Counter<long> _counter = null!;
    private WebApplication _host = null!;
    private HttpClient _http = null!;
    private Thread? _scraper;
    private volatile bool _stopScraping;

    public enum Candidate
    {
        /// <summary>The daemon's own exporter (Http/PrometheusExporter.cs): lock-free recording, per-processor histogram cells.</summary>
        Daemon,

        /// <summary>
        /// OpenTelemetry's SDK with its Prometheus ASP.NET Core exporter. Its aggregation is also what a
        /// measurement costs on top when OTLP export is on (Metrics:OtlpEndpoint).
        /// </summary>
        OpenTelemetry,
    }

    [Params(Candidate.Daemon, Candidate.OpenTelemetry)]
    public Candidate Exporter { get; set; }

    [GlobalSetup(Targets = [nameof(Histogram_Record), nameof(Counter_Add)])]
    public void Setup() => Start(scrape: false);

    [GlobalSetup(Targets = [nameof(Histogram_Record_TwoThreadsWhileScraping), nameof(Counter_Add_TwoThreadsWhileScraping)])]
    public void SetupScraping() => Start(scrape: true);

    [GlobalCleanup]
    public void Cleanup()
    {
        _stopScraping = true;
        _scraper?.Join();
        _http.Dispose();
        _host.StopAsync().GetAwaiter().GetResult();
        ((IDisposable)_host).Dispose();
        _meters.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void Histogram_Record() => _histogram.Record(0.003);

    [Benchmark]
    public void Counter_Add() => _counter.Add(1);

    [Benchmark(OperationsPerInvoke = 2 * PerThread)]
    public void Histogram_Record_TwoThreadsWhileScraping() => OnTwoThreads(static h => h.RecordMany(), this);

    [Benchmark(OperationsPerInvoke = 2 * PerThread)]
    public void Counter_Add_TwoThreadsWhileScraping() => OnTwoThreads(static h => h.AddMany(), this);

    private static void OnTwoThreads(Action<MetricsRecordingBenchmarks> work, MetricsRecordingBenchmarks state)
    {
        var other = Task.Run(() => work(state));
        work(state);
        other.GetAwaiter().GetResult();
    }

    private void RecordMany()
    {
        // Spread over the buckets, as send latencies are.
        for (var i = 0; i < PerThread; i++)
        {
            _histogram.Record((i & 1023) * 0.00005);
        }
    }

    private void AddMany()
    {
        for (var i = 0; i < PerThread; i++)
        {
            _counter.Add(1);
        }
    }

    private void Start(bool scrape)
    {
        _meters = new BenchmarkMeterFactory();
        var meter = _meters.Create(PipelineMetrics.MeterName);
        _histogram = new PipelineMetrics(_meters).SendLatency;
        _counter = meter.CreateCounter<long>("pricedaemon.benchmark.counted", "{item}", "A plain counter, recorded per increment");

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        Action<WebApplication> map;
        switch (Exporter)
        {
            case Candidate.Daemon:
                builder.Services.AddDaemonMetrics(builder.Configuration);
                map = static app => app.MapMetrics();
                break;
            case Candidate.OpenTelemetry:
                builder.Services.AddOpenTelemetry().WithMetrics(static metrics => metrics
                    .AddMeter(PipelineMetrics.MeterName, "System.Runtime")
                    .AddView("pricedaemon.send.latency", new ExplicitBucketHistogramConfiguration { Boundaries = PrometheusExporter.Buckets })
                    .AddPrometheusExporter(static o => o.ScrapeResponseCacheDurationMilliseconds = 0));
                map = static app => app.MapPrometheusScrapingEndpoint();
                break;
            default:
                throw new InvalidOperationException($"unknown candidate {Exporter}");
        }

        _host = builder.Build();
        map(_host);
        _host.StartAsync().GetAwaiter().GetResult();
        var address = _host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _http = new HttpClient { BaseAddress = new Uri(address) };
        // One scrape before measuring: exporters that create series on first sight do it outside the loop.
        _histogram.Record(0.003);
        _counter.Add(1);
        _ = _http.GetStringAsync("/metrics").GetAwaiter().GetResult();
        if (scrape)
        {
            _scraper = new Thread(ScrapeLoop) { IsBackground = true, Name = "scraper" };
            _scraper.Start();
        }
    }

    private void ScrapeLoop()
    {
        while (!_stopScraping)
        {
            _ = _http.GetStringAsync("/metrics").GetAwaiter().GetResult();
            Thread.Sleep(1);
        }
    }
}
