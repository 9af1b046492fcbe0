using PriceDaemon.Hosting;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Candles;

internal static class CandleServiceCollectionExtensions
{
    /// <summary>The <c>Candles</c> section and, unless turned off, the book (a tick observer) and its service.</summary>
    public static IServiceCollection AddCandles(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSectionOptions<CandleOptions>(configuration, CandleOptions.Section, static o => o.Problems());
        if (OptionsBinding.Read<CandleOptions>(configuration, CandleOptions.Section).Enabled)
        {
            services.AddSingleton<CandleBook>();
            services.AddSingleton<ITickObserver>(static sp => sp.GetRequiredService<CandleBook>());
            services.AddSingleton<CandleService>();
            services.AddHostedService(static sp => sp.GetRequiredService<CandleService>());
        }

        return services;
    }
}
