namespace PriceDaemon.Sockets;

internal sealed partial class PriceSession
{
    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "Subscribed to {Count} instruments (connection {ConnectionId}, {Total} in all)")]
    private partial void LogSubscribed(long connectionId, int count, int total);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "Closing slow consumer {ConnectionId} from {RemoteAddress}: {Reason}")]
    private partial void LogSlowConsumer(long connectionId, string remoteAddress, string reason);

    [LoggerMessage(EventId = 302, Level = LogLevel.Debug, Message = "WebSocket error on connection {ConnectionId} from {RemoteAddress} ({Loop}): {Error}")]
    private partial void LogSocketError(long connectionId, string remoteAddress, string loop, string error);

    [LoggerMessage(EventId = 303, Level = LogLevel.Information, Message = "Closing connection {ConnectionId} from {RemoteAddress}: token expired")]
    private partial void LogTokenExpired(long connectionId, string remoteAddress);

    [LoggerMessage(EventId = 304, Level = LogLevel.Warning, Message = "Closing connection {ConnectionId} from {RemoteAddress}: more than {Limit} bad messages in a minute")]
    private partial void LogTooManyBadMessages(long connectionId, string remoteAddress, int limit);

    [LoggerMessage(EventId = 305, Level = LogLevel.Error, Message = "Send failed on connection {ConnectionId} from {RemoteAddress}; closing it")]
    private partial void LogSendFailed(long connectionId, string remoteAddress, Exception error);
}
