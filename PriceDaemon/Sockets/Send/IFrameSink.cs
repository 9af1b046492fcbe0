namespace PriceDaemon.Sockets.Send;

/// <summary>
/// Where a price socket's bytes go: whole WebSocket frames, one write at a time (its <see cref="SocketSender"/>
/// orders them). A write completes when the transport has taken every byte; one it cannot take at once
/// completes later and never blocks the calling thread.
/// </summary>
internal interface IFrameSink
{
    ValueTask WriteAsync(ReadOnlyMemory<byte> bytes);

    /// <summary>Ends a pending write with an error: the connection is going away. Idempotent.</summary>
    void Cancel();
}
