namespace PriceDaemon.Sockets;

internal sealed partial class PriceSession
{
    // There is no log scope per socket (its objects would live as long as the socket), so the line names the address itself.
    private void LogSubscribed(long connectionId, int count, int total) => LogSubscribed(connectionId, Remote, count, total);

    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "Subscribed to {Count} instruments (connection {ConnectionId} from {RemoteAddress}, {Total} in all)")]
    private partial void LogSubscribed(long connectionId, string remoteAddress, int count, int total);

    [LoggerMessage(EventId = 303, Level = LogLevel.Information, Message = "Closing connection {ConnectionId} from {RemoteAddress}: token expired")]
    private partial void LogTokenExpired(long connectionId, string remoteAddress);

    [LoggerMessage(EventId = 304, Level = LogLevel.Warning, Message = "Closing connection {ConnectionId} from {RemoteAddress}: more than {Limit} bad messages in a minute")]
    private partial void LogTooManyBadMessages(long connectionId, string remoteAddress, int limit);

    [LoggerMessage(EventId = 306, Level = LogLevel.Warning, Message = "Could not parse a {Bytes}-byte message on connection {ConnectionId} from {RemoteAddress} ({ExceptionType}: {Reason}); answered invalid_message")]
    private partial void LogUnreadableMessage(long connectionId, string remoteAddress, int bytes, string exceptionType, string reason);
}
