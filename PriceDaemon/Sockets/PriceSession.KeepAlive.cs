using PriceDaemon.Sockets.Send;

namespace PriceDaemon.Sockets;

internal sealed partial class PriceSession
{
    /// <summary>Sweeper: pings a quiet peer, and cuts one that left a ping unanswered for the keep-alive interval.</summary>
    public void KeepAlive(int intervalSeconds)
    {
        var clock = _services.KeepAliveTime;
        if (_sender.KeepAlive(clock.GetTimestamp(), intervalSeconds * clock.TimestampFrequency) == KeepAliveVerdict.Unanswered)
        {
            SocketLog.SocketError(_logger, Id, Remote, "keep-alive", "a ping went unanswered");
            // It does not answer, so a close frame would not be answered either: cut the connection.
            Abort();
        }
    }
}
