namespace PriceDaemon.Sockets;

/// <summary>Log lines about one socket that both its session and its sender write.</summary>
internal static partial class SocketLog
{
    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "Closing slow consumer {ConnectionId} from {RemoteAddress}: {Reason}")]
    public static partial void SlowConsumer(ILogger logger, long connectionId, string remoteAddress, string reason);

    [LoggerMessage(EventId = 302, Level = LogLevel.Debug, Message = "WebSocket error on connection {ConnectionId} from {RemoteAddress} ({Loop}): {Error}")]
    public static partial void SocketError(ILogger logger, long connectionId, string remoteAddress, string loop, string error);

    [LoggerMessage(EventId = 305, Level = LogLevel.Error, Message = "Send failed on connection {ConnectionId} from {RemoteAddress}; closing it")]
    public static partial void SendFailed(ILogger logger, long connectionId, string remoteAddress, Exception error);

    [LoggerMessage(EventId = 307, Level = LogLevel.Information, Message = "Slow consumer {ConnectionId} from {RemoteAddress} warned and downsampled to one price per instrument per {IntervalMs} ms")]
    public static partial void SlowConsumerWarned(ILogger logger, long connectionId, string remoteAddress, int intervalMs);

    [LoggerMessage(EventId = 308, Level = LogLevel.Information, Message = "Connection {ConnectionId} from {RemoteAddress} keeps up again: back to full rate")]
    public static partial void SlowConsumerRecovered(ILogger logger, long connectionId, string remoteAddress);
}
