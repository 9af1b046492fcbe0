namespace PriceDaemon.Push;

/// <summary>
/// Where pushes are shared between daemons, in a NATS deployment (<c>Nats/NatsPushes.cs</c>): the publish API writes
/// there first and delivers to its own sockets only once the write is accepted, and every daemon applies what the
/// others wrote. Not registered in a single daemon, whose inbox file, topics and announcements are its own.
/// </summary>
internal interface IPushReplica
{
    /// <summary>Stores a new notification where every daemon sees it; <see cref="ReplicaWrite.Duplicate"/> when its id is there already.</summary>
    Task<ReplicaWrite> CreateNotificationAsync(InboxEntry entry, CancellationToken cancellationToken);

    /// <summary>A client acked <paramref name="entry"/> here: queued and written (retried while NATS is away), so every daemon stops replaying it.</summary>
    void Acked(InboxEntry entry);

    /// <summary>This daemon expired <paramref name="entry"/> to keep its user's inbox within its count: queued, removed for every daemon.</summary>
    void Expired(InboxEntry entry);

    /// <summary>Stores an announcement; <see cref="ReplicaWrite.Duplicate"/> when one with its id is in force.</summary>
    Task<ReplicaWrite> AddAnnouncementAsync(Announcement announcement, CancellationToken cancellationToken);

    /// <summary>Removes an announcement for every daemon.</summary>
    Task<ReplicaWrite> RemoveAnnouncementAsync(string id, CancellationToken cancellationToken);

    /// <summary>Stores a topic's value; the seq is the shared one (the same on every daemon), 0 unless written.</summary>
    Task<(ReplicaWrite Result, long Seq)> SetTopicAsync(string topic, string data, CancellationToken cancellationToken);
}

internal enum ReplicaWrite
{
    Written,
    Duplicate,
    /// <summary>NATS did not take the write in time: nothing was delivered, the publisher retries (503).</summary>
    Unavailable,
}
