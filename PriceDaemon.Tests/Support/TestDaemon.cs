using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Tests.Support;

/// <summary>
/// The real daemon host, in this process, on 127.0.0.1 with a port the OS picks. By default it has no feed:
/// the test is the feed, writing ticks into the real ingest channel.
/// </summary>
internal sealed class TestDaemon : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _folder;

    private TestDaemon(WebApplication app, FakeTimeProvider? time, string folder)
    {
        _app = app;
        _folder = folder;
        Time = time;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseUri = new Uri(address);
        WebSocketUri = new Uri($"ws://{BaseUri.Authority}/api/ws/prices");
    }

    public Uri BaseUri { get; }

    public Uri WebSocketUri { get; }

    public FakeTimeProvider? Time { get; }

    public IServiceProvider Services => _app.Services;

    public InstrumentRegistry Instruments => Services.GetRequiredService<InstrumentRegistry>();

    public ChannelWriter<Tick> Ticks => Services.GetRequiredService<IngestChannel>().Writer;

    public static async Task<TestDaemon> StartAsync(
        IDictionary<string, string>? settings = null,
        FakeTimeProvider? time = null,
        Action<IServiceCollection>? configure = null)
    {
        // Each daemon gets its own storage file, so no test sees another's prices; a Storage:Path setting wins.
        var folder = Directory.CreateTempSubdirectory("pricedaemon-test-").FullName;
        var args = new List<string>
        {
            "--urls", "http://127.0.0.1:0", "--Feed:Source=None", "--Throttle:MinIntervalMs=0", $"--Storage:Path={Path.Combine(folder, "prices.db")}",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            args.Add($"--{key}={value}");
        }

        var app = Program.Build([.. args], services =>
        {
            if (time is not null)
            {
                services.RemoveAll<TimeProvider>();
                services.AddSingleton<TimeProvider>(time);
            }

            configure?.Invoke(services);
        });
        await app.StartAsync();
        return new TestDaemon(app, time, folder);
    }

    public int Id(string key) => Instruments.TryGet(key, out var instrument) ? instrument.Id : throw new ArgumentException($"unknown {key}");

    /// <summary>Writes one tick as a feed would.</summary>
    /// <summary>
    /// Accepted sockets inherit the listening socket's send buffer: a small one makes a client that stops
    /// reading back up after kilobytes, where the kernel's autotuning would buffer megabytes.
    /// </summary>
    public static void SmallSendBuffers(IServiceCollection services) =>
        services.Configure<SocketTransportOptions>(o => o.CreateBoundListenSocket = static endpoint =>
        {
            var socket = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
            socket.SendBufferSize = 4096;
            return socket;
        });

    public ValueTask TickAsync(string key, double price, long volume = 100, long? timeMs = null) =>
        Ticks.WriteAsync(new Tick(Id(key), price, volume, (timeMs ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()) * 1000, 0, PriceSource.Live));

    public HttpClient Http() => new() { BaseAddress = BaseUri };

    public Task StopAsync() => _app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await _app.StopAsync(timeout.Token);
        await _app.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }
}
