using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Storage;

namespace PriceDaemon.Http;

/// <summary>
/// <c>/health/live</c>: the process answers. <c>/health/ready</c>: listening, cache warm, storage writable,
/// with one JSON entry per check. A failing disk makes readiness <c>degraded</c> (HTTP 200), not unready:
/// the daemon still streams every price from memory, and a load balancer that dropped it would cut clients
/// off from them. The feed is reported and never required, because last known prices are worth serving.
/// </summary>
internal static class HealthEndpoints
{
    private const string Ready = "ready";

    private static readonly JsonWriterOptions _json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static IServiceCollection AddDaemonHealthChecks(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<ListeningCheck>("listening", tags: [Ready])
            .AddCheck<CacheCheck>("cache", tags: [Ready])
            .AddCheck<StorageCheck>("storage", tags: [Ready])
            .AddCheck<FeedCheck>("feed", tags: [Ready]);
        return services;
    }

    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = static _ => false, ResponseWriter = WriteAsync });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = static c => c.Tags.Contains(Ready), ResponseWriter = WriteAsync });
        return app;
    }

    /// <summary><c>{"status":"degraded","checks":{"storage":{"status":"degraded","description":"..."}, ...}}</c></summary>
    private static Task WriteAsync(HttpContext context, HealthReport report)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buffer, _json))
        {
            w.WriteStartObject();
            w.WriteString("status", Name(report.Status));
            w.WriteStartObject("checks");
            foreach (var (name, entry) in report.Entries)
            {
                w.WriteStartObject(name);
                w.WriteString("status", Name(entry.Status));
                w.WriteString("description", entry.Description);
                w.WriteEndObject();
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        context.Response.ContentType = "application/json; charset=utf-8";
        return context.Response.Body.WriteAsync(buffer.WrittenMemory).AsTask();
    }

    private static string Name(HealthStatus status) => status switch
    {
        HealthStatus.Healthy => "healthy",
        HealthStatus.Degraded => "degraded",
        _ => "unhealthy",
    };

    private sealed class ListeningCheck : IHealthCheck
    {
        private readonly IServer _server;
        private readonly IHostApplicationLifetime _lifetime;

        public ListeningCheck(IServer server, IHostApplicationLifetime lifetime)
        {
            _server = server;
            _lifetime = lifetime;
        }

        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var addresses = string.Join(", ", _server.Features.Get<IServerAddressesFeature>()?.Addresses ?? []);
            return Task.FromResult(
                _lifetime.ApplicationStopping.IsCancellationRequested ? HealthCheckResult.Unhealthy("shutting down")
                : _lifetime.ApplicationStarted.IsCancellationRequested ? HealthCheckResult.Healthy($"listening on {addresses}")
                : HealthCheckResult.Unhealthy("starting"));
        }
    }

    private sealed class CacheCheck : IHealthCheck
    {
        private readonly StorageService _storage;
        private readonly PriceCache _cache;
        private readonly InstrumentRegistry _instruments;

        public CacheCheck(StorageService storage, PriceCache cache, InstrumentRegistry instruments)
        {
            _storage = storage;
            _cache = cache;
            _instruments = instruments;
        }

        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            if (!_storage.IsWarm)
            {
                return Task.FromResult(HealthCheckResult.Unhealthy("not loaded from storage yet"));
            }

            var priced = 0;
            for (var id = 0; id < _instruments.Count; id++)
            {
                priced += _cache.Get(id) is null ? 0 : 1;
            }

            return Task.FromResult(HealthCheckResult.Healthy($"warm: {priced} of {_instruments.Count} instruments have a price"));
        }
    }

    private sealed class StorageCheck : IHealthCheck
    {
        private readonly StorageService _storage;

        public StorageCheck(StorageService storage)
        {
            _storage = storage;
        }

        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(_storage.Problem is { } problem
                ? HealthCheckResult.Degraded($"{problem}; prices stay in memory and writes retry with backoff")
                : HealthCheckResult.Healthy($"writable: {_storage.Path}"));
    }

    private sealed class FeedCheck : IHealthCheck
    {
        private readonly FeedStatus _feed;

        public FeedCheck(FeedStatus feed)
        {
            _feed = feed;
        }

        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var (state, message) = _feed.Current;
            return Task.FromResult(HealthCheckResult.Healthy($"{Sockets.ControlFrames.StatusName(state)}: {message}"));
        }
    }
}
