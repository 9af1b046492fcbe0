using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using PriceDaemon.Hosting;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Http;

public static class MetricsServiceCollectionExtensions
{
    // The OpenTelemetry exporter's options are named, so that OTEL_* defaults for other exporters never mix in.
    private const string OtlpOptionsName = "pricedaemon";

    /// <summary>
    /// The Prometheus exporter behind <c>GET /metrics</c>, and, when <c>Metrics:OtlpEndpoint</c> is set, the
    /// OpenTelemetry SDK pushing the same meters over OTLP. The settings are validated at start-up; the
    /// exporter reads them only once validation has passed.
    /// </summary>
    public static IServiceCollection AddDaemonMetrics(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSectionOptions<MetricsOptions>(configuration, MetricsOptions.Section, static o => o.Problems());
        services.AddSingleton<PrometheusExporter>();
        // Whether to start the SDK at all is decided here, from the same binding the validated options get.
        if (string.IsNullOrWhiteSpace(OptionsBinding.Read<MetricsOptions>(configuration, MetricsOptions.Section).OtlpEndpoint))
        {
            return services;
        }

        services.AddOpenTelemetry()
            .ConfigureResource(static resource => resource.AddService("pricedaemon", serviceVersion: Program.Version))
            .WithMetrics(static metrics => metrics
                .AddMeter(PipelineMetrics.MeterName, "System.Runtime")
                // The daemon's histograms get the buckets /metrics has, so both views of a latency agree.
                .AddView(static instrument => instrument.Meter.Name == PipelineMetrics.MeterName && instrument is Histogram<double>
                    ? new ExplicitBucketHistogramConfiguration { Boundaries = PrometheusExporter.Buckets }
                    : null)
                .AddOtlpExporter(OtlpOptionsName, configure: null));
        services.AddOptions<OtlpExporterOptions>(OtlpOptionsName).Configure<IOptions<MetricsOptions>>(static (exporter, metrics) =>
        {
            exporter.Endpoint = metrics.Value.OtlpUri();
            exporter.Protocol = metrics.Value.OtlpProtocol == MetricsOptions.HttpProtobuf ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
            // The SDK's last export runs when the host is disposed, after the stop: an unreachable collector must
            // not hold a SIGTERM past systemd's TimeoutStopSec (the default would be 10 s).
            exporter.TimeoutMilliseconds = 2_000;
        });
        services.AddOptions<MetricReaderOptions>(OtlpOptionsName).Configure<IOptions<MetricsOptions>>(static (reader, metrics) =>
            reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = metrics.Value.OtlpExportIntervalMs);
        return services;
    }

    /// <summary><c>GET /metrics</c> in the Prometheus text format.</summary>
    public static IEndpointRouteBuilder MapMetrics(this IEndpointRouteBuilder app)
    {
        // Listening from the start: the latency histogram records only while someone listens.
        _ = app.ServiceProvider.GetRequiredService<PrometheusExporter>();
        app.MapGet("/metrics", static (PrometheusExporter exporter) =>
            TypedResults.Text(exporter.Scrape(), "text/plain; version=0.0.4; charset=utf-8"));
        return app;
    }
}
