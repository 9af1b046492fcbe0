using System.Text;
using PriceDaemon.Hosting;

namespace PriceDaemon.Push;

internal static class PushServiceCollectionExtensions
{
    /// <summary>The <c>Push</c> section, and when a publisher key is set, the inbox (opened at start).</summary>
    public static IServiceCollection AddPush(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSectionOptions<PushOptions>(configuration, PushOptions.Section, Failures);
        if (IsEnabled(configuration))
        {
            services.AddSingleton<AnnouncementBoard>();
            services.AddSingleton<TopicCache>();
            services.AddSingleton<NotificationInbox>();
            services.AddHostedService(static sp => sp.GetRequiredService<NotificationInbox>());
        }

        return services;
    }

    private static IEnumerable<string> Failures(PushOptions o)
    {
        if (o.PublisherKey.Length > 0 && Encoding.UTF8.GetByteCount(o.PublisherKey) < 32)
        {
            // The key itself is never printed.
            yield return $"PublisherKey: must be at least 32 bytes (got {Encoding.UTF8.GetByteCount(o.PublisherKey)})";
        }

        if (o.PublisherKey.Length == 0 && o.Topics.Count > 0)
        {
            // Topics without the key would be configured and never set: say so rather than serve them empty.
            yield return "Topics: need Push:PublisherKey (the backend sets topics through the publish API)";
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < o.Topics.Count; i++)
        {
            var name = o.Topics[i].Name;
            if (name.Length is 0 or > 64 || name.Any(char.IsControl) || name.Trim() != name)
            {
                yield return $"Topics:{i}:Name: '{name}' is not a topic name (1-64 characters, no control characters or outer spaces)";
            }
            else if (!seen.Add(name))
            {
                yield return $"Topics:{i}:Name: '{name}' is given twice";
            }
        }
    }

    public static bool IsEnabled(IConfiguration configuration) =>
        OptionsBinding.Read<PushOptions>(configuration, PushOptions.Section).PublisherKey.Length > 0;
}
