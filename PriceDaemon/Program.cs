using System.Reflection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using PriceDaemon.Feeds;
using PriceDaemon.Hosting;
using PriceDaemon.Http;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;
using PriceDaemon.Sockets;

namespace PriceDaemon;

public static class Program
{
    public const int ConfigErrorExitCode = 2;

    public static async Task<int> Main(string[] args)
    {
        WebApplication app;
        try
        {
            app = Build(args);
            await app.StartAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ConfigurationError(ex) is { } message)
        {
            await Console.Error.WriteLineAsync($"pricedaemon: invalid configuration: {message}").ConfigureAwait(false);
            return ConfigErrorExitCode;
        }

        await app.WaitForShutdownAsync().ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
        return 0;
    }

    /// <summary>Builds the daemon. Tests call this with <c>--urls http://127.0.0.1:0</c> and their own service overrides.</summary>
    public static WebApplication Build(string[] args, Action<IServiceCollection>? configureServices = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = Directory.GetCurrentDirectory(),
        });

        AddConfiguration(builder.Configuration, args);
        builder.WebHost.UseKestrel(kestrel => kestrel.AddServerHeader = false);

        var services = builder.Services;
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<FeedOptions>().BindConfiguration(FeedOptions.Section).ValidateOnStart();
        services.AddOptions<ThrottleOptions>().BindConfiguration(ThrottleOptions.Section).ValidateOnStart();
        services.AddOptions<LimitsOptions>().BindConfiguration(LimitsOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<FeedOptions>>(new SectionValidator<FeedOptions>(FeedOptions.Section, static o =>
            o.Simulated.MinIntervalMs > o.Simulated.MaxIntervalMs
                ? ["Simulated:MinIntervalMs: must not exceed Feed:Simulated:MaxIntervalMs"]
                : []));
        services.AddSingleton<IValidateOptions<ThrottleOptions>>(new SectionValidator<ThrottleOptions>(ThrottleOptions.Section));
        services.AddSingleton<IValidateOptions<LimitsOptions>>(new SectionValidator<LimitsOptions>(LimitsOptions.Section));
        services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));

        services.AddSingleton(LoadInstruments);
        services.AddSingleton<FeedStatus>();
        services.AddSingleton<PipelineMetrics>();
        services.AddSingleton<IngestChannel>();
        services.AddSingleton<PriceCache>();
        services.AddSingleton<SubscriptionIndex>();
        services.AddSingleton<SessionServices>();

        // Hosted services stop in reverse order: feed first, then throttle, then fan-out.
        services.AddSingleton<SessionRegistry>();
        services.AddHostedService(static sp => sp.GetRequiredService<SessionRegistry>());
        services.AddSingleton<FanOutStage>();
        services.AddHostedService(static sp => sp.GetRequiredService<FanOutStage>());
        services.AddSingleton<ThrottleStage>();
        services.AddHostedService(static sp => sp.GetRequiredService<ThrottleStage>());
        if (string.Equals(builder.Configuration["Feed:Source"], "Simulated", StringComparison.Ordinal))
        {
            services.AddSingleton<IFeedSource, SimulatedFeed>();
        }

        services.AddHostedService<FeedService>();
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, DaemonJsonContext.Default));
        configureServices?.Invoke(services);

        var app = builder.Build();
        app.UseBatchingWebSocketStream();
        app.UseWebSockets();
        app.Map(PriceSocketEndpoint.Path, PriceSocketEndpoint.HandleAsync);
        app.MapPriceEndpoints();
        app.MapGet("/", () => TypedResults.Text(
            "PriceDaemon: live prices over WebSocket at /api/ws/prices; REST at /api/instruments and /api/prices\n"));
        return app;
    }

    /// <summary>
    /// Embedded defaults, then an optional file (<c>--config PATH</c>), then <c>PRICEDAEMON_</c> environment
    /// variables, then the command line. Nothing is read from the working directory unless named.
    /// </summary>
    private static void AddConfiguration(ConfigurationManager configuration, string[] args)
    {
        configuration.Sources.Clear();
        configuration.AddJsonStream(OpenResource("PriceDaemon.appsettings.json"));
        var configPath = ConfigPath(args);
        if (configPath is not null)
        {
            configuration.AddJsonFile(Path.GetFullPath(configPath), optional: false, reloadOnChange: false);
        }

        configuration.AddEnvironmentVariables("PRICEDAEMON_");
        configuration.AddCommandLine(args);
    }

    private static string? ConfigPath(string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--config" && i + 1 < args.Length)
            {
                return args[i + 1];
            }

            if (args[i].StartsWith("--config=", StringComparison.Ordinal))
            {
                return args[i]["--config=".Length..];
            }
        }

        return null;
    }

    private static InstrumentRegistry LoadInstruments(IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<FeedOptions>>().Value;
        var synthetic = options.Simulated.SyntheticInstruments;
        if (string.IsNullOrEmpty(options.InstrumentsPath))
        {
            using var embedded = new StreamReader(OpenResource("PriceDaemon.instruments.csv"));
            return InstrumentRegistry.Load(embedded, "instruments.csv (embedded)", synthetic);
        }

        try
        {
            using var file = new StreamReader(options.InstrumentsPath);
            return InstrumentRegistry.Load(file, options.InstrumentsPath, synthetic);
        }
        catch (IOException ex)
        {
            throw new InvalidDataException($"Feed:InstrumentsPath: cannot read '{options.InstrumentsPath}': {ex.Message}", ex);
        }
    }

    private static Stream OpenResource(string name) =>
        Assembly.GetExecutingAssembly().GetManifestResourceStream(name)
        ?? throw new InvalidOperationException($"embedded resource {name} is missing from the build");

    private static string? ConfigurationError(Exception ex) => ex switch
    {
        OptionsValidationException validation => string.Join("; ", validation.Failures),
        InvalidDataException data => data.Message,
        InvalidOperationException op when op.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal) => op.Message,
        FileNotFoundException file when file.FileName is not null => $"--config: {file.Message}",
        AggregateException aggregate when aggregate.InnerExceptions.Count == 1 => ConfigurationError(aggregate.InnerExceptions[0]),
        _ => ex.InnerException is { } inner ? ConfigurationError(inner) : null,
    };
}
