namespace PriceDaemon.Nats;

/// <summary>
/// An ingest (<c>Nats:Publish=true</c>) that does not evaluate users' alerts (<c>Auth:Mode=None</c>, or
/// <c>Alerts:Enabled=false</c>) says so once at start: edges with <c>Auth:Mode=Jwt</c> would store users' alerts in the
/// bucket that no daemon evaluates, and none would fire, silently otherwise (README: Price alerts, Scale-out).
/// </summary>
internal sealed partial class NatsAlertsOffLog(ILogger<NatsAlertsOffLog> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        LogNoEvaluator();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 948, Level = LogLevel.Information, Message = "Nats:Publish=true without users' alerts (Auth:Mode=None or Alerts:Enabled=false): users' alerts that edges store in the alerts bucket are evaluated by no daemon unless another ingest has Auth:Mode=Jwt and alerts on")]
    private partial void LogNoEvaluator();
}
