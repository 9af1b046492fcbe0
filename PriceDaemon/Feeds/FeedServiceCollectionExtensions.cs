using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds.Replay;
using PriceDaemon.Feeds.Upstox;
using PriceDaemon.Hosting;

namespace PriceDaemon.Feeds;

public static class FeedServiceCollectionExtensions
{
    /// <summary>
    /// Registers the feed named by <c>Feed:Source</c> as the <see cref="IFeedSource"/> (none for <c>None</c>),
    /// wrapped in a recorder when <c>Feed:Record:Path</c> is set, and the <see cref="IUpstreamInterest"/> that
    /// sessions report client subscriptions to (Upstox's selective subscription; a no-op for the others).
    /// </summary>
    public static IServiceCollection AddFeeds(this IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton<FeedMetrics>();
        services.AddSingleton<IValidateOptions<FeedOptions>, FeedSourceValidator>();
        // Which feed is a choice of registrations, so it is read now, through the same binding the validated options get:
        // a bad Feed value reads as the defaults here and stops the daemon at start-up validation, before any feed runs.
        var options = OptionsBinding.Read<FeedOptions>(configuration, FeedOptions.Section);
        Type? feed = options.Source switch
        {
            "Simulated" => typeof(SimulatedFeed),
            "Replay" => typeof(ReplayFeed),
            "Upstox" => typeof(UpstoxFeed),
            _ => null,
        };

        if (feed == typeof(UpstoxFeed))
        {
            services.AddSingleton<UpstoxSubscriptions>();
            services.AddSingleton<IUpstreamInterest>(static sp => sp.GetRequiredService<UpstoxSubscriptions>());
        }

        services.TryAddSingleton<IUpstreamInterest, NoUpstreamInterest>();
        if (feed is null)
        {
            return services;
        }

        services.AddSingleton(feed);
        var record = !string.IsNullOrWhiteSpace(options.Record.Path);
        services.AddSingleton(sp =>
        {
            var source = (IFeedSource)sp.GetRequiredService(feed);
            return record ? ActivatorUtilities.CreateInstance<RecordingFeedSource>(sp, source) : source;
        });
        return services;
    }
}

/// <summary>The feed rules that span keys; the per-key ranges are data annotations on the option classes.</summary>
internal sealed class FeedSourceValidator : IValidateOptions<FeedOptions>
{
    public ValidateOptionsResult Validate(string? name, FeedOptions options)
    {
        var failures = new List<string>();
        if (options.Source == "Replay")
        {
            if (string.IsNullOrWhiteSpace(options.Replay.Path))
            {
                failures.Add("Feed:Replay:Path: required when Feed:Source=Replay");
            }
            else if (!File.Exists(options.Replay.Path))
            {
                failures.Add($"Feed:Replay:Path: file '{options.Replay.Path}' not found");
            }
            else if (options.Record.Path.Length > 0 && string.Equals(Path.GetFullPath(options.Record.Path), Path.GetFullPath(options.Replay.Path), StringComparison.Ordinal))
            {
                failures.Add("Feed:Record:Path: must not be the file being replayed (Feed:Replay:Path)");
            }
        }

        if (options.Source == "Upstox")
        {
            var upstox = options.Upstox;
            if (!Uri.TryCreate(upstox.BaseUrl, UriKind.Absolute, out var baseUrl) || baseUrl.Scheme is not ("https" or "http"))
            {
                failures.Add($"Feed:Upstox:BaseUrl: must be an absolute http(s) URL (got {upstox.BaseUrl})");
            }

            if (string.IsNullOrWhiteSpace(upstox.AccessToken) && string.IsNullOrWhiteSpace(upstox.TokenFile))
            {
                failures.Add("Feed:Upstox:AccessToken: required when Feed:Source=Upstox (or set Feed:Upstox:TokenFile, or PRICEDAEMON_Feed__Upstox__AccessToken)");
            }

            if (upstox.ReconnectMinMs > upstox.ReconnectMaxMs)
            {
                failures.Add("Feed:Upstox:ReconnectMinMs: must not exceed Feed:Upstox:ReconnectMaxMs");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
