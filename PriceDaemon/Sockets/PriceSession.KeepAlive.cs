using PriceDaemon.Sockets.Send;

namespace PriceDaemon.Sockets;

internal sealed partial class PriceSession
{
    /// <summary>
    /// Sweeper: pings a peer quiet for between half the keep-alive interval and all of it (where in that range is the
    /// connection's id modulo half the interval, in seconds), and cuts one that left a ping unanswered for the interval.
    /// </summary>
    /// <remarks>
    /// The sockets of a storm were heard in the same few seconds; with one quiet time for all they would be pinged in
    /// the same sweep, answer together and be pinged together again, every interval, for as long as they stay. The
    /// spread by id costs a division per socket and sweep.
    /// </remarks>
    public void KeepAlive(int intervalSeconds)
    {
        var clock = _services.KeepAliveTime;
        var frequency = clock.TimestampFrequency;
        var interval = intervalSeconds * frequency;
        var quiet = interval - (Id % Math.Max(1, (intervalSeconds + 1) / 2)) * frequency;
        if (_sender.KeepAlive(clock.GetTimestamp(), interval, quiet) == KeepAliveVerdict.Unanswered)
        {
            SocketLog.SocketError(_logger, Id, Remote, "keep-alive", "a ping went unanswered");
            // It does not answer, so a close frame would not be answered either: cut the connection.
            Abort();
        }
    }
}
