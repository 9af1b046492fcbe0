using System.Text;
using PriceDaemon.Hosting;

namespace PriceDaemon.Push;

internal static class PushServiceCollectionExtensions
{
    /// <summary>The <c>Push</c> section, and when a publisher key is set, the inbox (opened at start).</summary>
    public static IServiceCollection AddPush(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSectionOptions<PushOptions>(configuration, PushOptions.Section, static o =>
            o.PublisherKey.Length > 0 && Encoding.UTF8.GetByteCount(o.PublisherKey) < 32
                ? [$"PublisherKey: must be at least 32 bytes (got {Encoding.UTF8.GetByteCount(o.PublisherKey)})"]
                : []);
        if (IsEnabled(configuration))
        {
            services.AddSingleton<AnnouncementBoard>();
            services.AddSingleton<NotificationInbox>();
            services.AddHostedService(static sp => sp.GetRequiredService<NotificationInbox>());
        }

        return services;
    }

    public static bool IsEnabled(IConfiguration configuration) =>
        OptionsBinding.Read<PushOptions>(configuration, PushOptions.Section).PublisherKey.Length > 0;
}
