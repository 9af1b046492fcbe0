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
    /// Writes an alert's new state over <paramref name="revision"/>; <see cref="ReplicaWrite.Duplicate"/> when the alert
    /// changed since (deleted, or written by another evaluator): the change is dropped.
    /// </summary>
    Task<(ReplicaWrite Result, ulong Revision)> UpdateAsync(AlertSnapshot alert, ulong revision, CancellationToken cancellationToken);
}
