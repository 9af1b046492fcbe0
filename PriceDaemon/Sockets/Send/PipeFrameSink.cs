namespace PriceDaemon.Sockets.Send;

/// <summary>
/// Writes into Kestrel's output pipe, through the stream Kestrel hands out for it: the connection's own pipe
/// on the direct handshake path when direct socket sends are off, or the stream of an upgraded request (an
/// HTTP/1.1 upgrade, or HTTP/2's extended CONNECT) on the endpoint path. A write there is a write and a flush:
/// the bytes are on their way to the socket when it completes.
/// </summary>
internal sealed class PipeFrameSink : IFrameSink
{
    private readonly Stream _output;
    private readonly Action? _cancel;

    /// <param name="output">Kestrel's stream for the pipe.</param>
    /// <param name="cancel">Ends a pending flush, where the stream's owner does not on its own.</param>
    public PipeFrameSink(Stream output, Action? cancel = null)
    {
        _output = output;
        _cancel = cancel;
    }

    public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes) => _output.WriteAsync(bytes);

    public void Cancel() => _cancel?.Invoke();
}
