using Microsoft.Extensions.DependencyInjection.Extensions;
using PriceDaemon.Feeds;
using PriceDaemon.Hosting;

namespace PriceDaemon.Nats;

public static class NatsServiceCollectionExtensions
{
    /// <summary>
    /// The NATS roles, by configuration. <c>Feed:Source=Nats</c> makes an edge: the <see cref="NatsFeed"/> is the feed
    /// and a warm start from the bucket runs before every other hosted service. <c>Nats:Publish=true</c> wraps the feed
    /// that <see cref="FeedServiceCollectionExtensions.AddFeeds"/> registered so that its ticks are also published.
    /// Call after <c>AddFeeds</c>. Without either, nothing touches NATS.
    /// </summary>
    public static IServiceCollection AddNats(this IServiceCollection services, IConfiguration configuration)
    {
        // The roles shape the registrations, so they are read now, through the same binding the validated options get.
        var edge = OptionsBinding.Read<FeedOptions>(configuration, FeedOptions.Section).Source == "Nats";
        var publish = OptionsBinding.Read<NatsOptions>(configuration, NatsOptions.Section).Publish;
        services.AddSectionOptions<NatsOptions>(configuration, NatsOptions.Section, o => Problems(o, edge));
        if (!edge && !publish)
        {
            return services;
        }

        services.TryAddSingleton<NatsMetrics>();
        services.TryAddSingleton<NatsLink>();
        services.AddHealthChecks().AddCheck<NatsHealthCheck>("nats", tags: ["ready"]);
        // Users' alerts are shared too (a bucket of their own, evaluated where the feed is published), and their fires
        // go through the shared inbox, which is then there even without a publisher key.
        var sharedAlerts = Alerts.AlertsServiceCollectionExtensions.IsEnabled(configuration)
            && OptionsBinding.Read<Security.AuthOptions>(configuration, Security.AuthOptions.Section).Mode == Security.AuthMode.Jwt;
        if (Push.PushServiceCollectionExtensions.IsEnabled(configuration) || sharedAlerts)
        {
            // Pushes are shared by every daemon of the deployment: the buckets replace the inbox file (NatsPushes).
            services.AddSingleton<NatsPushes>();
            services.AddSingleton<Push.IPushReplica>(static sp => sp.GetRequiredService<NatsPushes>());
            services.AddHostedService(static sp => sp.GetRequiredService<NatsPushes>());
        }

        if (sharedAlerts)
        {
            // The alerts bucket replaces alerts.db (NatsPushes.Alerts.cs).
            services.AddSingleton<Alerts.IAlertReplica>(static sp => sp.GetRequiredService<NatsPushes>());
        }
        else if (publish && !edge)
        {
            services.AddHostedService<NatsAlertsOffLog>(); // the evaluator of edges' users' alerts is not this one
        }
        if (edge)
        {
            services.AddSingleton<NatsFeed>();
            services.AddSingleton<IFeedSource>(static sp => sp.GetRequiredService<NatsFeed>());
            // First of all hosted services: the cache must hold the bucket's prices before the throttle stage continues
            // their seqs and before the host reports ready (Kestrel and systemd's READY come after every StartAsync).
            var first = services.TakeWhile(d => d.ServiceType != typeof(IHostedService)).Count();
            services.Insert(first, ServiceDescriptor.Singleton<IHostedService, NatsWarmStart>());
        }

        // Closed bars: the ingest publishes them, an edge backfills its history from them (Nats/NatsCandles.cs).
        if (OptionsBinding.Read<Candles.CandleOptions>(configuration, Candles.CandleOptions.Section).Enabled)
        {
            if (edge)
            {
                services.AddSingleton<NatsCandleBackfill>();
                services.AddHostedService(static sp => sp.GetRequiredService<NatsCandleBackfill>());
            }
            else
            {
                services.AddSingleton<NatsCandlePublisher>();
                services.AddSingleton<Candles.IClosedBarSink>(static sp => sp.GetRequiredService<NatsCandlePublisher>());
                services.AddHostedService(static sp => sp.GetRequiredService<NatsCandlePublisher>());
            }
        }

        if (publish && services.LastOrDefault(d => d.ServiceType == typeof(IFeedSource)) is { } feed && !edge)
        {
            services.AddSingleton<NatsPublisher>();
            services.AddHostedService(static sp => sp.GetRequiredService<NatsPublisher>());
            services.Remove(feed);
            services.AddSingleton<IFeedSource>(sp => new PublishingFeedSource(Create(sp, feed), sp.GetRequiredService<NatsPublisher>(), sp.GetService<Pipeline.DepthIngest>()));
        }

        return services;
    }

    private static IFeedSource Create(IServiceProvider sp, ServiceDescriptor descriptor) =>
        (IFeedSource)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(sp)
            ?? ActivatorUtilities.CreateInstance(sp, descriptor.ImplementationType!));

    private static IEnumerable<string> Problems(NatsOptions options, bool edge)
    {
        if (options.Publish && edge)
        {
            yield return "Publish: must be false when Feed:Source=Nats (an edge would publish its own ticks back to itself)";
        }

        foreach (var url in options.Url.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("nats" or "tls" or "ws" or "wss"))
            {
                yield return $"Url: '{url}' is not a nats://host:port URL";
            }
        }

        for (var i = 0; i < options.Subjects.Length; i++)
        {
            if (NatsSubjects.Problem(options.Subjects[i]) is { } problem)
            {
                yield return $"Subjects:{i}: {problem}";
            }
        }

        if (options.ReconnectMinMs > options.ReconnectMaxMs)
        {
            yield return "ReconnectMinMs: must not exceed Nats:ReconnectMaxMs";
        }
    }
}
