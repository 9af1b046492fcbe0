using System.Net.WebSockets;

namespace PriceDaemon.Sockets;

/// <summary>
/// What a session reads its client's messages through, and what its sender closes: the few members of a
/// <see cref="WebSocket"/> the daemon uses. The direct-upgrade path reads frames straight from the connection's
/// pipe (<see cref="PipeClientSocket"/>), without a WebSocket and a stream under it (~0.75 KiB of an idle socket);
/// Kestrel's own upgrade (TLS, HTTP/2, a handshake after other requests) keeps its WebSocket (<see cref="WebSocketClientSocket"/>).
/// </summary>
internal interface IClientSocket : IDisposable
{
    /// <summary>The status of the close frame the peer sent; null until one arrived.</summary>
    WebSocketCloseStatus? CloseStatus { get; }

    /// <summary>True while a close frame may still be written: none was yet, and the socket was not aborted.</summary>
    bool CanSendClose { get; }

    /// <summary>
    /// <see cref="WebSocket.ReceiveAsync(Memory{byte}, CancellationToken)"/>: an empty <paramref name="buffer"/> waits for the
    /// next message's first frame and takes none of its payload. A protocol error fails the connection (a close frame
    /// with the RFC's code, then a <see cref="WebSocketException"/>).
    /// </summary>
    ValueTask<ValueWebSocketReceiveResult> ReceiveAsync(Memory<byte> buffer);

    /// <summary>Writes the close frame (the sender calls it once, as its last write).</summary>
    Task CloseOutputAsync(WebSocketCloseStatus status, string reason);

    /// <summary>Ends whatever is pending on the connection; idempotent.</summary>
    void Abort();
}
