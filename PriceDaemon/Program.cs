using System.Reflection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.FileProviders;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;
using PriceDaemon.Candles;
using PriceDaemon.Alerts;
using PriceDaemon.Feeds;
using PriceDaemon.Hosting;
using PriceDaemon.Http;
using PriceDaemon.Instruments;
using PriceDaemon.Nats;
using PriceDaemon.Pipeline;
using PriceDaemon.Push;
using PriceDaemon.Security;
using PriceDaemon.Sockets;
using PriceDaemon.Sockets.Send;
using PriceDaemon.Storage;

namespace PriceDaemon;

public static class Program
{
    public const int ConfigErrorExitCode = 2;

    public static string Version { get; } =
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>The data file cannot be used: damaged, not LiteDB, held by another daemon, or not writable.</summary>
    public const int StorageErrorExitCode = 3;

    public static async Task<int> Main(string[] args)
    {
        if (args.Contains("--version"))
        {
            Console.WriteLine($"PriceDaemon {Version}");
            return 0;
        }

        var checkOnly = args.Contains("--check-config");
        args = [.. args.Where(a => a is not ("--check-config" or "--version"))];
        WebApplication app;
        try
        {
            app = Build(args);
            // Validated before the host starts, so a bad value is one line from us, not a host stack trace.
            app.Services.GetService<IStartupValidator>()?.Validate();
            _ = app.Services.GetRequiredService<InstrumentRegistry>();
            if (checkOnly)
            {
                Console.WriteLine("pricedaemon: configuration is valid");
                return 0;
            }

            // Before the host starts, so that a refused data file is one clear line rather than a host failure
            // with a stack trace. The host's own start does it for callers that skip this (tests).
            app.Services.GetRequiredService<StorageService>().Open();
            app.Services.GetService<NotificationInbox>()?.Open();
            app.Services.GetService<CandleService>()?.Open();
            await app.StartAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ConfigurationError(ex) is { } message)
        {
            await Console.Error.WriteLineAsync($"pricedaemon: invalid configuration: {message}").ConfigureAwait(false);
            return ConfigErrorExitCode;
        }
        catch (StorageException ex)
        {
            await Console.Error.WriteLineAsync($"pricedaemon: cannot start: {ex.Message}").ConfigureAwait(false);
            return StorageErrorExitCode;
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
        // wwwroot is compiled into the assembly, so every copy of the daemon serves the same board from any folder.
        builder.Environment.WebRootFileProvider = new EmbeddedFileProvider(typeof(Program).Assembly, "PriceDaemon.wwwroot");
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Endpoints are read once, like the rest of the configuration. With reloading on (the default),
            // Kestrel watches certificate files and rebinds an endpoint when one is touched: a port-0 endpoint
            // then moves to another port under its clients. Rotate a certificate with a restart instead.
            kestrel.Configure(builder.Configuration.GetSection("Kestrel"), reloadOnChange: false);
            // A connection that opens with a plain price-socket handshake is served without an HTTP request
            // held open under it (Sockets/DirectUpgrade.cs); every other connection reaches the app as usual.
            // https_ports (ASP.NET Core's HTTPS_PORTS) adds https endpoints of its own.
            var urls = ListenPolicy.ConfiguredUrls(builder.Configuration)
                .Concat((builder.Configuration["https_ports"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(static port => $"https://*:{port}"))
                .ToList();
            kestrel.ConfigureEndpointDefaults(listen => listen.Use(next =>
                new DirectUpgrade(next, () => listen.ApplicationServices, DirectUpgrade.AppliesTo(listen.Protocols, urls)).OnConnectionAsync));
        });
        builder.WebHost.UseSockets();
        builder.Services.AddOptions<SocketTransportOptions>().Configure<IOptions<TransportOptions>>(static (sockets, transport) =>
            sockets.UnsafePreferInlineScheduling = transport.Value.InlineSocketScheduling);
        builder.AddDaemonLogging();
        // Type=notify under systemd: READY=1 once the host has started (storage warm, Kestrel listening).
        builder.Host.UseSystemd();

        var services = builder.Services;
        services.TryAddSingleton(TimeProvider.System);
        var configuration = builder.Configuration;
        services.AddSectionOptions<FeedOptions>(configuration, FeedOptions.Section, static o =>
            o.Simulated.Problems());
        services.AddSectionOptions<ThrottleOptions>(configuration, ThrottleOptions.Section);
        services.AddSectionOptions<LimitsOptions>(configuration, LimitsOptions.Section, static o => o.Problems());
        services.AddSectionOptions<TransportOptions>(configuration, TransportOptions.Section);
        services.AddSingleton<IValidateOptions<TransportOptions>>(new MovedTransportKeys(configuration));
        // Auth, origins and per-user limits; refuses anonymous listening beyond loopback at start-up.
        services.AddDaemonSecurity(configuration);
        services.AddSectionOptions<StorageOptions>(configuration, StorageOptions.Section);
        services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));

        services.AddSingleton(LoadInstruments);
        services.AddSingleton<FeedStatus>();
        services.AddSingleton<PipelineMetrics>();
        services.AddSingleton<IngestChannel>();
        services.AddSingleton<PriceCache>();
        services.AddSingleton<SubscriptionIndex>();
        services.AddSingleton<SendPump>();
        services.AddSingleton<SessionServices>();

        // Start order is registration order, downstream first: storage (it warms the cache), sessions, fan-out,
        // throttle, then the feed, so nothing is produced before its reader runs; Kestrel starts after all of them.
        // Stop order is ShutdownSequence's: feed, throttle drain, storage's final flush, sockets 1001, then the
        // host stops the rest in reverse (Kestrel first). An edge's NATS warm start goes before storage (AddNats).
        services.AddHostedService<ShutdownSequence>();
        services.AddSingleton<StorageService>();
        services.AddHostedService(static sp => sp.GetRequiredService<StorageService>());
        services.AddPush(configuration); // the inbox, when Push:PublisherKey is set: loaded before sockets open
        services.AddCandles(configuration); // bars restored before the throttle runs; stops after it drained
        services.AddAlerts(configuration); // after the inbox (stops before it); before the throttle (loaded before the first tick)
        services.AddSingleton<SessionRegistry>();
        services.AddHostedService(static sp => sp.GetRequiredService<SessionRegistry>());
        services.AddSingleton<FanOutStage>();
        services.AddHostedService(static sp => sp.GetRequiredService<FanOutStage>());
        services.AddSingleton<ThrottleStage>();
        services.AddHostedService(static sp => sp.GetRequiredService<ThrottleStage>());
        services.AddSingleton<DepthIngest>();
        services.AddSingleton<DepthStage>();
        services.AddHostedService(static sp => sp.GetRequiredService<DepthStage>());
        services.AddFeeds(builder.Configuration);
        services.AddNats(builder.Configuration); // after AddFeeds: an edge's feed, or a tap on the feed that publishes

        services.AddSingleton<FeedService>();
        services.AddHostedService(static sp => sp.GetRequiredService<FeedService>());
        services.AddDaemonHealthChecks();
        services.AddDaemonMetrics(builder.Configuration);
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, DaemonJsonContext.Default));
        configureServices?.Invoke(services);

        var app = builder.Build();
        app.UseSocketSenders();
        app.UseWebSockets();
        app.Map(PriceSocketEndpoint.Path, PriceSocketEndpoint.HandleAsync);
        app.MapPriceEndpoints();
        app.MapCandleEndpoints();
        app.MapHealthEndpoints();
        app.MapMetrics();
        if (PushServiceCollectionExtensions.IsEnabled(configuration))
        {
            app.MapPublishEndpoints();
        }

        if (AlertsServiceCollectionExtensions.IsEnabled(configuration))
        {
            app.MapAlertEndpoints();
        }

        // GET / is the live board (index.html); price-socket.js is served beside it.
        app.UseDefaultFiles();
        app.UseStaticFiles();
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
        FileNotFoundException file when file.FileName is not null => $"--config: {file.Message}",
        // Start-up validation throws one exception per failing section; all of them go on the one line.
        AggregateException aggregate when aggregate.InnerExceptions.Select(ConfigurationError).ToList() is var messages && messages.All(static m => m is not null) =>
            string.Join("; ", messages),
        _ => ex.InnerException is { } inner ? ConfigurationError(inner) : null,
    };
}
