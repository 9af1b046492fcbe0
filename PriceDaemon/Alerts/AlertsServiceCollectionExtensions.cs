using PriceDaemon.Hosting;
using PriceDaemon.Pipeline;
using PriceDaemon.Push;
using PriceDaemon.Security;

namespace PriceDaemon.Alerts;

internal static class AlertsServiceCollectionExtensions
{
    /// <summary>
    /// The <c>Alerts</c> section, and when on: the book (a tick observer), its writer, and the notification inbox a
    /// user's fired alerts go to, even when the publish API is off (no <c>Push:PublisherKey</c>). Call after
    /// <c>AddPush</c>: the writer then stops before the inbox, whose final write takes the last notifications.
    /// </summary>
    public static IServiceCollection AddAlerts(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSectionOptions<AlertOptions>(configuration, AlertOptions.Section, Failures);
        var options = OptionsBinding.Read<AlertOptions>(configuration, AlertOptions.Section);
        if (options.Volume.Enabled)
        {
            services.AddSingleton<VolumeWatch>();
            services.AddSingleton<ITickObserver>(static sp => sp.GetRequiredService<VolumeWatch>());
            services.AddHostedService(static sp => sp.GetRequiredService<VolumeWatch>());
        }

        if (!options.Enabled)
        {
            return services;
        }

        if (!PushServiceCollectionExtensions.IsEnabled(configuration)
            && OptionsBinding.Read<AuthOptions>(configuration, AuthOptions.Section).Mode == AuthMode.Jwt)
        {
            // Users' alerts are delivered through their inbox: it is there with or without the publish API.
            services.AddSingleton<NotificationInbox>();
            services.AddHostedService(static sp => sp.GetRequiredService<NotificationInbox>());
        }

        services.AddSingleton<AlertBook>();
        services.AddSingleton<ITickObserver>(static sp => sp.GetRequiredService<AlertBook>());
        services.AddSingleton<AlertWriter>();
        services.AddHostedService(static sp => sp.GetRequiredService<AlertWriter>());
        return services;
    }

    public static bool IsEnabled(IConfiguration configuration) =>
        OptionsBinding.Read<AlertOptions>(configuration, AlertOptions.Section).Enabled;

    private static IEnumerable<string> Failures(AlertOptions o)
    {
        if (o.Volume.MinBaselineMinutes > o.Volume.BaselineMinutes)
        {
            yield return $"Volume:MinBaselineMinutes: must be at most Volume:BaselineMinutes ({o.Volume.BaselineMinutes})";
        }
    }
}
