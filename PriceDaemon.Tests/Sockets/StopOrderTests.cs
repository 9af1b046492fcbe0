using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using PriceDaemon.Sockets;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Sockets;

/// <summary>The stop's two steps on the socket side: refuse new sockets at once, close the open ones last.</summary>
public sealed class StopOrderTests
{
    private const string Reliance = "NSE_EQ|INE002A01018";

    [Test]
    public async Task WhileTheStopDrains_NewSocketsAreRefused_AndOpenOnesStillGetPrices_UntilTheyAreClosedWith1001()
    {
        await using var daemon = await TestDaemon.StartAsync();
        var registry = daemon.Services.GetRequiredService<SessionRegistry>();
        await using var open = await TestClient.ConnectAsync(daemon.WebSocketUri);
        await open.SubscribeAsync(Reliance);

        registry.StopAccepting();

        using var late = new ClientWebSocket();
        late.Options.CollectHttpResponseDetails = true;
        Assert.ThrowsAsync<WebSocketException>(() => late.ConnectAsync(daemon.WebSocketUri, CancellationToken.None));
        Assert.That(late.HttpStatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));

        await daemon.TickAsync(Reliance, 1460.25);
        await open.NextPriceAsync(Reliance, 1460.25);

        registry.CloseAll();
        Assert.That(await open.WaitClosedAsync(), Is.EqualTo(WebSocketCloseStatus.EndpointUnavailable));
    }

    [Test]
    public async Task AfterSigtermsFirstStep_NewConnectionsAreStillAnswered_HealthAndA503ForAPriceSocket()
    {
        // SIGTERM's order: the host's stopping token fires, then the drain (new sockets refused first), and Kestrel stops
        // only after it. A TestDaemon's host does not stop on the token, so the drain's window stays open here.
        await using var daemon = await TestDaemon.StartAsync();
        daemon.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
        daemon.Services.GetRequiredService<SessionRegistry>().StopAccepting();

        using var tcp = new TcpClient();
        await tcp.ConnectAsync(daemon.BaseUri.Host, daemon.BaseUri.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET /health/live HTTP/1.1\r\nHost: {daemon.BaseUri.Authority}\r\nConnection: close\r\n\r\n"));
        var buffer = new byte[4096];
        var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(Encoding.ASCII.GetString(buffer, 0, read), Does.StartWith("HTTP/1.1 200"), "a new connection during the drain is answered, not cut");

        using var late = new ClientWebSocket();
        late.Options.CollectHttpResponseDetails = true;
        Assert.ThrowsAsync<WebSocketException>(() => late.ConnectAsync(daemon.WebSocketUri, CancellationToken.None));
        Assert.That(late.HttpStatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
    }
}
