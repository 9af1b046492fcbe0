namespace PriceDaemon.Sockets;

internal sealed partial class PriceSession
{
    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "Subscribed to {Count} instruments (connection {ConnectionId}, {Total} in all)")]
    private partial void LogSubscribed(long connectionId, int count, int total);

    [LoggerMessage(EventId = 303, Level = LogLevel.Information, Message = "Closing connection {ConnectionId} from {RemoteAddress}: token expired")]
    private partial void LogTokenExpired(long connectionId, string remoteAddress);

    [LoggerMessage(EventId = 304, Level = LogLevel.Warning, Message = "Closing connection {ConnectionId} from {RemoteAddress}: more than {Limit} bad messages in a minute")]
    private partial void LogTooManyBadMessages(long connectionId, string remoteAddress, int limit);
}
