using System.Net.WebSockets;

namespace PriceDaemon.Sockets;

/// <summary>A <see cref="WebSocket"/> Kestrel upgraded (or one built over a stream): the path that keeps ManagedWebSocket.</summary>
internal sealed class WebSocketClientSocket(WebSocket socket) : IClientSocket
{
    public WebSocketCloseStatus? CloseStatus => socket.CloseStatus;

    public bool CanSendClose => socket.State is WebSocketState.Open or WebSocketState.CloseReceived;

    public ValueTask<ValueWebSocketReceiveResult> ReceiveAsync(Memory<byte> buffer) => socket.ReceiveAsync(buffer, CancellationToken.None);

    public Task CloseOutputAsync(WebSocketCloseStatus status, string reason) => socket.CloseOutputAsync(status, reason, CancellationToken.None);

    public void Abort() => socket.Abort();

    public void Dispose() => socket.Dispose();
}
