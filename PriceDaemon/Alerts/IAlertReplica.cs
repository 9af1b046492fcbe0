using PriceDaemon.Push;

namespace PriceDaemon.Alerts;

/// <summary>
/// Where users' alerts are shared between daemons, in a NATS deployment (<c>Nats/NatsPushes.Alerts.cs</c>): a create or
/// delete on any daemon is written there first and answered only once it is accepted; every daemon's
/// <see cref="AlertBook"/> follows it, and only the evaluator (<see cref="Evaluates"/>) arms users' alerts on its tick
/// path and writes their fires back. Not registered in a single daemon, nor with <c>Auth:Mode=None</c> (an anonymous
/// connection's alerts are its own and evaluated where it is connected).
/// </summary>
internal interface IAlertReplica
{
    /// <summary>This daemon evaluates users' alerts: the one whose feed is published (<c>Nats:Publish=true</c>).</summary>
    bool Evaluates { get; }

    /// <summary>Stores a new alert; its revision when <see cref="ReplicaWrite.Written"/>.</summary>
    Task<(ReplicaWrite Result, ulong Revision)> CreateAsync(AlertSnapshot alert, CancellationToken cancellationToken);

    /// <summary>Deletes an alert for every daemon.</summary>
    Task<ReplicaWrite> DeleteAsync(Alert alert, CancellationToken cancellationToken);

    /// <summary>
    /// Writes an alert's new state, and how many of its fires are known notified, over <paramref name="revision"/>;
    /// <see cref="ReplicaWrite.Duplicate"/> when another revision holds it (a delete, another evaluator's write, or this
    /// one's earlier write whose answer was lost): <see cref="ReadAsync"/> tells which.
    /// </summary>
    Task<(ReplicaWrite Result, ulong Revision)> UpdateAsync(AlertSnapshot alert, int notified, ulong revision, CancellationToken cancellationToken);

    /// <summary>What the store holds of an alert now: null (with <see cref="ReplicaWrite.Written"/>) when it is deleted or gone.</summary>
    Task<(ReplicaWrite Result, StoredAlert? Stored)> ReadAsync(Alert alert, CancellationToken cancellationToken);
}

/// <summary>An alert's state as the shared store holds it: its fire count, its notified count and the revision.</summary>
internal readonly record struct StoredAlert(AlertState State, int FireCount, int Notified, ulong Revision);
