using System.IO.Compression;
using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace PriceDaemon.Tests.Support;

/// <summary>
/// A collector's OTLP metrics receiver, as far as a test needs one: Kestrel on 127.0.0.1 port 0 taking
/// protobuf posts to <c>/v1/metrics</c> (OTLP/HTTP) or gRPC calls of <c>MetricsService/Export</c> over
/// cleartext HTTP/2 (OTLP/gRPC), answering each with an empty (successful) export response, and handing the
/// export requests to the test undecoded.
/// </summary>
internal sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Channel<Request> _requests = Channel.CreateUnbounded<Request>();

    private OtlpReceiver(WebApplication app)
    {
        _app = app;
    }

    public Uri BaseUri { get; private set; } = null!;

    public static async Task<OtlpReceiver> StartAsync(bool grpc)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
            listen.Protocols = grpc ? HttpProtocols.Http2 : HttpProtocols.Http1));
        builder.Logging.ClearProviders();
        var receiver = new OtlpReceiver(builder.Build());
        receiver._app.MapPost("/v1/metrics", receiver.ReceiveAsync);
        receiver._app.MapPost("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", receiver.ReceiveGrpcAsync);
        await receiver._app.StartAsync();
        receiver.BaseUri = new Uri(receiver._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return receiver;
    }

    /// <summary>Waits for an export whose body holds every one of <paramref name="names"/> as UTF-8.</summary>
    public async Task<Request> ExportContainingAsync(TimeSpan timeout, params string[] names)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var request = await _requests.Reader.ReadAsync(cancel.Token);
                if (names.All(request.Contains))
                {
                    return request;
                }
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            Assert.Fail($"no OTLP export holding {string.Join(", ", names)} within {timeout.TotalSeconds} s");
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task ReceiveAsync(HttpContext context)
    {
        using var body = new MemoryStream();
        var source = context.Request.Headers.ContentEncoding == "gzip"
            ? new GZipStream(context.Request.Body, CompressionMode.Decompress)
            : context.Request.Body;
        await using (source)
        {
            await source.CopyToAsync(body, context.RequestAborted);
        }

        await _requests.Writer.WriteAsync(new Request(context.Request.ContentType, body.ToArray()), context.RequestAborted);
        // An ExportMetricsServiceResponse with no fields set is zero bytes: everything accepted.
        context.Response.ContentType = "application/x-protobuf";
    }

    private async Task ReceiveGrpcAsync(HttpContext context)
    {
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        // One length-prefixed message: a compression flag (0: the exporter compresses only when told to), four
        // bytes of length, the protobuf.
        await _requests.Writer.WriteAsync(new Request(context.Request.ContentType, body.ToArray()[5..]), context.RequestAborted);
        context.Response.ContentType = "application/grpc";
        await context.Response.Body.WriteAsync(new byte[5], context.RequestAborted);
        context.Response.AppendTrailer("grpc-status", "0");
    }

    internal sealed record Request(string? ContentType, byte[] Body)
    {
        public bool Contains(string name) => Body.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(name)) >= 0;
    }
}
