namespace PriceDaemon.Alerts;

internal enum AlertWorkKind : byte
{
    /// <summary>A new alert: stored, then the creator is answered.</summary>
    Created,

    /// <summary>Its state changed without firing (re-armed): stored.</summary>
    Changed,

    /// <summary>It fired: its state stored, then the notification goes out.</summary>
    Fired,

    /// <summary>Deleted by its owner: removed from the file, then the owner is answered.</summary>
    Deleted,

    /// <summary>
    /// NATS: stored as fired by an evaluator that stopped before its notification was known to be created (the
    /// bucket's fire count is past its notified count): created now (once per fire, whoever tries), then marked.
    /// </summary>
    Unnotified,
}

/// <summary>
/// One change for the alert writer, in the order the book made it (fires are queued under the instrument's lock, so a
/// change never overtakes an older one of the same alert). <see cref="Done"/> completes once it is on disk.
/// </summary>
internal readonly record struct AlertWork(AlertWorkKind Kind, AlertSnapshot Snapshot, TaskCompletionSource? Done = null);
