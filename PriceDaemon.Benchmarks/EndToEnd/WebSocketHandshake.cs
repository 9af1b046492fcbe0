using System.Security.Cryptography;
using System.Text;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>The client side of the RFC 6455 opening handshake.</summary>
internal static class WebSocketHandshake
{
    private const string Guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    public static string NewKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));

    public static byte[] Request(string host, string path, string key) => Encoding.ASCII.GetBytes(
        $"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n");

    public static string ExpectedAccept(string key) =>
        Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + Guid)));

    /// <summary>Checks the response head (status line and headers, without the blank line); null when it accepts the upgrade.</summary>
    public static string? Validate(string responseHead, string key)
    {
        var lines = responseHead.Split("\r\n");
        if (!lines[0].StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
        {
            return $"upgrade refused: {lines[0]}";
        }

        var accept = lines
            .Skip(1)
            .Select(static l => l.Split(':', 2))
            .FirstOrDefault(static h => h.Length == 2 && h[0].Trim().Equals("Sec-WebSocket-Accept", StringComparison.OrdinalIgnoreCase))?[1]
            .Trim();
        return accept == ExpectedAccept(key) ? null : $"wrong Sec-WebSocket-Accept '{accept}'";
    }
}
