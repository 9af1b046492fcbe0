using NATS.Client.KeyValueStore;
using PriceDaemon.Alerts;
using PriceDaemon.Push;

namespace PriceDaemon.Nats;

/// <summary>
/// Users' price alerts in a NATS deployment: the <c>&lt;prefix&gt;-alerts</c> bucket is their store, one key per alert
/// (<see cref="AlertCodec"/>). A create is an atomic create of its key, a delete a delete, and the evaluator writes a
/// fire over the revision it holds (compare-and-set), so a delete that raced it wins. Every daemon watches the bucket
/// into its <see cref="AlertBook"/>, which lists them; only the evaluator arms them on its tick path.
/// </summary>
internal sealed partial class NatsPushes
{
    /// <summary>The daemon whose feed is published evaluates users' alerts; edges only list and change them.</summary>
    public bool Evaluates => _options.Publish;

    public async Task<(ReplicaWrite Result, ulong Revision)> CreateAsync(AlertSnapshot alert, CancellationToken cancellationToken)
    {
        ulong revision = 0;
        var result = await WriteAsync(PushKinds.Alert, async (bucket, ct) =>
        {
            var created = await bucket.TryCreateAsync(AlertCodec.Key(alert.Alert), AlertCodec.Write(alert), cancellationToken: ct).ConfigureAwait(false);
            if (!created.Success)
            {
                return created.Error is NatsKVCreateException ? ReplicaWrite.Duplicate : throw created.Error;
            }

            revision = created.Value;
            return ReplicaWrite.Written;
        }, AlertsBucket, cancellationToken).ConfigureAwait(false);
        return (result, revision);
    }

    public Task<ReplicaWrite> DeleteAsync(Alert alert, CancellationToken cancellationToken) =>
        WriteAsync(PushKinds.AlertDeleted, async (bucket, ct) =>
        {
            await bucket.DeleteAsync(AlertCodec.Key(alert), cancellationToken: ct).ConfigureAwait(false);
            return ReplicaWrite.Written;
        }, AlertsBucket, cancellationToken);

    public async Task<(ReplicaWrite Result, ulong Revision)> UpdateAsync(AlertSnapshot alert, ulong revision, CancellationToken cancellationToken)
    {
        ulong written = 0;
        var result = await WriteAsync(PushKinds.AlertState, async (bucket, ct) =>
        {
            var updated = await bucket.TryUpdateAsync(AlertCodec.Key(alert.Alert), AlertCodec.Write(alert), revision, cancellationToken: ct).ConfigureAwait(false);
            if (!updated.Success)
            {
                // Another revision holds the key: a delete, or another evaluator's write. Theirs stands.
                return updated.Error is NatsKVWrongLastRevisionException ? ReplicaWrite.Duplicate : throw updated.Error;
            }

            written = updated.Value;
            return ReplicaWrite.Written;
        }, AlertsBucket, cancellationToken).ConfigureAwait(false);
        return (result, written);
    }

    private void ApplyAlert(NatsKVEntry<ReadOnlyMemory<byte>> change)
    {
        if (change.Operation != NatsKVOperation.Put)
        {
            _alerts!.Removed(AlertCodec.IdOf(change.Key));
            Interlocked.Increment(ref _metrics.PushReceived[PushKinds.AlertDeleted]);
            return;
        }

        if (AlertCodec.Read(change.Value, _instruments) is not { } alert)
        {
            LogAlertSkipped(change.Key);
            return;
        }

        _alerts!.Apply(alert, change.Revision);
        Interlocked.Increment(ref _metrics.PushReceived[alert.FireCount > 0 ? PushKinds.AlertState : PushKinds.Alert]);
    }

    [LoggerMessage(EventId = 947, Level = LogLevel.Warning, Message = "Alert {Key} in the alerts bucket is not one this daemon can hold (unknown instrument or condition): not listed here")]
    private partial void LogAlertSkipped(string key);
}
