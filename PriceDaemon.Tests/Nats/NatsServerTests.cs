using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Nats;

/// <summary>
/// What every NATS test class starts and ends the same way: a temp folder, a real <c>nats-server -js</c> in it on a free
/// port, and the daemons a test starts (in process or as processes), disposed before the server goes.
/// </summary>
public abstract class NatsServerTests(string folderPrefix)
{
    private protected string Folder { get; private set; } = null!;

    private protected NatsServer Server { get; private set; } = null!;

    /// <summary>Daemons to dispose after the test; a test that disposes one itself removes it.</summary>
    private protected List<IAsyncDisposable> Daemons { get; } = [];

    [SetUp]
    public async Task StartNatsServer()
    {
        Folder = Directory.CreateTempSubdirectory(folderPrefix).FullName;
        Server = await NatsServer.StartAsync(Folder);
    }

    [TearDown]
    public async Task StopDaemonsAndNatsServer()
    {
        foreach (var daemon in Daemons)
        {
            await daemon.DisposeAsync();
        }

        Daemons.Clear();
        await Server.DisposeAsync();
        Directory.Delete(Folder, recursive: true);
    }
}
