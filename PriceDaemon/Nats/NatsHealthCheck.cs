using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace PriceDaemon.Nats;

/// <summary>
/// Reports the NATS connection in <c>/health/ready</c> and never fails readiness for it: an edge without NATS still
/// serves last known prices (marked stale), and an ingest without NATS still serves its own clients.
/// </summary>
internal sealed class NatsHealthCheck : IHealthCheck
{
    private readonly NatsLink _link;
    private readonly NatsOptions _options;

    public NatsHealthCheck(NatsLink link, IOptions<NatsOptions> options)
    {
        _link = link;
        _options = options.Value;
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(HealthCheckResult.Healthy(_link.IsOpen
            ? $"connected to {_options.Url}"
            : $"not connected to {_options.Url} ({_link.Connection.ConnectionState}); reconnecting"));
}
