using System.ComponentModel.DataAnnotations;

namespace PriceDaemon.Http;

/// <summary>
/// Metrics export beyond <c>GET /metrics</c>, which is always served. OTLP push is for operators who run an
/// OpenTelemetry collector; it sends the same meters (the daemon's and <c>System.Runtime</c>) under their
/// instrument names, and is off unless an endpoint is set.
/// </summary>
public sealed class MetricsOptions
{
    public const string Section = "Metrics";

    public const string Grpc = "grpc";
    public const string HttpProtobuf = "http/protobuf";

    /// <summary>
    /// The collector's OTLP endpoint, e.g. <c>http://127.0.0.1:4317</c> for gRPC or <c>http://127.0.0.1:4318</c>
    /// for HTTP (<c>/v1/metrics</c> is added when the URI has no path). Empty (the default): no OTLP export,
    /// and the OpenTelemetry SDK is not started.
    /// </summary>
    public string OtlpEndpoint { get; set; } = "";

    /// <summary><c>grpc</c> (the default, the collector's port 4317) or <c>http/protobuf</c> (its port 4318).</summary>
    public string OtlpProtocol { get; set; } = Grpc;

    /// <summary>
    /// How often the meters are collected and pushed (default 60000 ms, the OpenTelemetry SDK's own default).
    /// Each push reads every observable instrument once; a shorter interval costs more pushes, nothing per tick.
    /// </summary>
    [Range(100, 3_600_000)]
    public int OtlpExportIntervalMs { get; set; } = 60_000;

    internal bool OtlpEnabled => !string.IsNullOrWhiteSpace(OtlpEndpoint);

    /// <summary>The URI the exporter posts to: HTTP gets the signal path when none is given, as collectors expect.</summary>
    internal Uri OtlpUri()
    {
        var uri = new Uri(OtlpEndpoint.Trim(), UriKind.Absolute);
        return OtlpProtocol == HttpProtobuf && uri.AbsolutePath == "/" ? new Uri(uri, "v1/metrics") : uri;
    }

    internal IEnumerable<string> Problems()
    {
        if (OtlpEnabled && (!Uri.TryCreate(OtlpEndpoint.Trim(), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
        {
            yield return $"{nameof(OtlpEndpoint)}: must be an absolute http:// or https:// URI, or empty for no OTLP export (got '{OtlpEndpoint}')";
        }

        if (OtlpProtocol is not (Grpc or HttpProtobuf))
        {
            yield return $"{nameof(OtlpProtocol)}: must be {Grpc} or {HttpProtobuf} (got '{OtlpProtocol}')";
        }
    }
}
