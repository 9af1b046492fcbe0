using Microsoft.Extensions.DependencyInjection;
using Serilog.Core;
using Serilog.Events;

namespace PriceDaemon.Tests.Security;

/// <summary>A Serilog sink the daemon picks up from its services: every event the host logs, kept for assertions.</summary>
internal sealed class LogCapture : ILogEventSink
{
    private readonly List<LogEvent> _events = [];

    public void Emit(LogEvent logEvent)
    {
        lock (_events)
        {
            _events.Add(logEvent);
        }
    }

    public List<LogEvent> Events
    {
        get
        {
            lock (_events)
            {
                return [.. _events];
            }
        }
    }

    public List<string> Messages => Events.Select(static e => e.RenderMessage()).ToList();

    /// <summary>Errors, fatals and anything logged with an exception attached.</summary>
    public List<string> Failures => Events
        .Where(static e => e.Level >= LogEventLevel.Error || e.Exception is not null)
        .Select(static e => $"{e.Level}: {e.RenderMessage()} {e.Exception}")
        .ToList();

    public Action<IServiceCollection> Install => services => services.AddSingleton<ILogEventSink>(this);
}
