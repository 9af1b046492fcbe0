namespace PriceDaemon.Push;

/// <summary>
/// One notification in a user's inbox. Its frames are serialized once, when it is published (or loaded), and the
/// same bytes go to every socket of the user.
/// </summary>
internal sealed class InboxEntry
{
    public InboxEntry(string user, string id, string kind, DateTimeOffset createdAt, string data)
    {
        User = user;
        Id = id;
        Kind = kind;
        CreatedAt = createdAt;
        Data = data;
        Live = PushFrames.Notification(this, replayed: false);
        Replayed = PushFrames.Notification(this, replayed: true);
    }

    /// <summary>The user's <c>sub</c>.</summary>
    public string User { get; }

    public string Id { get; }

    public string Kind { get; }

    public DateTimeOffset CreatedAt { get; }

    /// <summary>The publisher's <c>data</c>, as the JSON text it sent (validated, written as is).</summary>
    public string Data { get; private set; }

    /// <summary>Acked by a client: no longer replayed, kept (until it ages out) so that a repeated id is not delivered again.</summary>
    public bool Acked { get; private set; }

    /// <summary>The frame for sockets connected when it is published.</summary>
    public byte[] Live { get; private set; }

    /// <summary>The frame for a socket that connects while it is unacked (<c>"replayed": true</c>).</summary>
    public byte[] Replayed { get; private set; }

    /// <summary>
    /// Acked: only its id (and age) still matter, for dedupe; the payload and its frames go, so a user's acked
    /// ids cost bytes, not up to four copies of a 16 KiB body each.
    /// </summary>
    public InboxEntry MarkAcked()
    {
        Acked = true;
        Data = "null";
        Live = [];
        Replayed = [];
        return this;
    }

    /// <summary>The stored document's key: one user's ids never collide with another's.</summary>
    public string StoreKey => StoreKeyOf(User, Id);

    public static string StoreKeyOf(string user, string id) => string.Concat(user, "\n", id);
}
