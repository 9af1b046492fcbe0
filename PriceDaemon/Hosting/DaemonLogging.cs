using Serilog;

namespace PriceDaemon.Hosting;

internal static class DaemonLogging
{
    /// <summary>
    /// Serilog from the <c>Serilog</c> section: console (journald and supervisor read stdout) and rolling
    /// files. Every <c>ILogger</c> of the daemon and of ASP.NET Core goes through it. No static logger:
    /// several hosts in one process (the tests) each get their own.
    /// </summary>
    public static void AddDaemonLogging(this WebApplicationBuilder builder)
    {
        builder.Logging.ClearProviders();
        builder.Services.AddSerilog(
            (services, logger) => logger.ReadFrom.Configuration(builder.Configuration).ReadFrom.Services(services),
            preserveStaticLogger: true);
    }
}
