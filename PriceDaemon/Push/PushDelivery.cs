using PriceDaemon.Sockets;

namespace PriceDaemon.Push;

/// <summary>Queues push frames on this daemon's sockets: the publish API's and, in a NATS deployment, the bucket watch's.</summary>
internal static class PushDelivery
{
    /// <summary>The notification's live frame on every socket of its user here; returns how many.</summary>
    public static int ToUser(SessionRegistry sessions, NotificationInbox inbox, InboxEntry entry)
    {
        var sockets = 0;
        foreach (var session in sessions.SessionsOf(entry.User))
        {
            session.EnqueueControl(entry.Live);
            sockets++;
        }

        Interlocked.Add(ref inbox.Delivered, sockets);
        return sockets;
    }

    /// <summary>An announcement's frame (or its removal) on every socket here, anonymous ones included; returns how many.</summary>
    public static int ToAll(SessionRegistry sessions, byte[] frame)
    {
        var sockets = 0;
        foreach (var session in sessions.Sessions)
        {
            session.EnqueueControl(frame);
            sockets++;
        }

        return sockets;
    }
}
