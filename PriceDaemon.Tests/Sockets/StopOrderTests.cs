using System.Net;
using System.Net.WebSockets;
using Microsoft.Extensions.DependencyInjection;
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
}
