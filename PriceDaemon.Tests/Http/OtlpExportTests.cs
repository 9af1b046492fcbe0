using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Http;

/// <summary>Metrics:OtlpEndpoint turns on OTLP push of the meters /metrics serves; a bad value stops the start.</summary>
public sealed class OtlpExportTests
{
    [TestCase("http/protobuf", "application/x-protobuf")]
    [TestCase("grpc", "application/grpc")]
    public async Task Otlp_PushesTheDaemonAndRuntimeMeters_WhenAnEndpointIsSet(string protocol, string contentType)
    {
        await using var receiver = await OtlpReceiver.StartAsync(grpc: protocol == "grpc");
        await using var daemon = await TestDaemon.StartAsync(new Dictionary<string, string>
        {
            // No path: for HTTP the daemon adds /v1/metrics, as a collector's clients do.
            ["Metrics:OtlpEndpoint"] = receiver.BaseUri.ToString().TrimEnd('/'),
            ["Metrics:OtlpProtocol"] = protocol,
            ["Metrics:OtlpExportIntervalMs"] = "200",
        });

        // Instrument names as the meters publish them (OTLP carries no Prometheus suffixes), the meter's
        // name as the scope, and the daemon as the service: the resource attribute service.name, whose value is
        // the whole string "pricedaemon" (protobuf: field 1, length 11), not a prefix of an instrument's name.
        var export = await receiver.ExportContainingAsync(TimeSpan.FromSeconds(20),
            "pricedaemon.frames.sent", "pricedaemon.sessions.active", "PriceDaemon", "dotnet.gc.collections", "System.Runtime",
            "service.name", "\n\u000Bpricedaemon");
        Assert.That(export.ContentType, Is.EqualTo(contentType));
    }

    [Test]
    public async Task Otlp_BadSettings_ExitTwoNamingTheKey()
    {
        var folder = Directory.CreateTempSubdirectory("pricedaemon-otlp-").FullName;
        try
        {
            var (exit, output) = await DaemonProcess.RunToExitAsync(folder, "--check-config", "--Metrics:OtlpEndpoint=collector:4317");
            Assert.That(exit, Is.EqualTo(2), string.Join('\n', output));
            Assert.That(output, Has.One.Contains("Metrics:OtlpEndpoint: must be an absolute http:// or https:// URI"));

            (exit, output) = await DaemonProcess.RunToExitAsync(folder, "--check-config", "--Metrics:OtlpEndpoint=http://127.0.0.1:4317", "--Metrics:OtlpProtocol=http/json");
            Assert.That(exit, Is.EqualTo(2), string.Join('\n', output));
            Assert.That(output, Has.One.Contains("Metrics:OtlpProtocol: must be grpc or http/protobuf (got 'http/json')"));

            (exit, output) = await DaemonProcess.RunToExitAsync(folder, "--check-config", "--Metrics:OtlpEndpoint=http://127.0.0.1:4317");
            Assert.That(exit, Is.Zero, string.Join('\n', output));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
