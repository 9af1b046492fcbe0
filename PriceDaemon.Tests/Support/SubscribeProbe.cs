using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace PriceDaemon.Tests.Support;

/// <summary>For sockets opened some other way than <see cref="TestClient"/> (HTTP/2, odd paths): subscribe, and list frame types.</summary>
internal static class SubscribeProbe
{
    /// <summary>Subscribes to <paramref name="key"/> and returns the type of every frame up to its first price_update.</summary>
    public static async Task<List<string>> TypesUntilPriceAsync(ClientWebSocket socket, string key, CancellationToken cancellationToken)
    {
        await socket.SendAsync(Encoding.UTF8.GetBytes($$"""{"action":"subscribe","instruments":["{{key}}"]}"""), WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        var buffer = new byte[8192];
        var types = new List<string>();
        while (!types.Contains("price_update"))
        {
            var result = await socket.ReceiveAsync(buffer, cancellationToken);
            using var frame = JsonDocument.Parse(buffer.AsMemory(0, result.Count));
            types.Add(frame.RootElement.GetProperty("type").GetString()!);
        }

        return types;
    }
}
