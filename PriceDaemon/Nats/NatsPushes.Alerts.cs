using NATS.Client.Core;
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

    public async Task<(ReplicaWrite Result, ulong Revision)> UpdateAsync(AlertSnapshot alert, int notified, ulong revision, CancellationToken cancellationToken)
    {
        ulong written = 0;
        var result = await WriteAsync(PushKinds.AlertState, async (bucket, ct) =>
        {
            var updated = await bucket.TryUpdateAsync(AlertCodec.Key(alert.Alert), AlertCodec.Write(alert, notified), revision, cancellationToken: ct).ConfigureAwait(false);
            if (!updated.Success)
            {
                // Another revision holds the key: a delete, another evaluator's write, or this one's whose answer was lost.
                return updated.Error is NatsKVWrongLastRevisionException ? ReplicaWrite.Duplicate : throw updated.Error;
            }

            written = updated.Value;
            return ReplicaWrite.Written;
        }, AlertsBucket, cancellationToken).ConfigureAwait(false);
        return (result, written);
    }

    public async Task<(ReplicaWrite Result, StoredAlert? Stored)> ReadAsync(Alert alert, CancellationToken cancellationToken)
    {
        StoredAlert? stored = null;
        var result = await ReadAlertAsync(async (bucket, ct) =>
        {
            var entry = await bucket.TryGetEntryAsync<ReadOnlyMemory<byte>>(AlertCodec.Key(alert), cancellationToken: ct).ConfigureAwait(false);
            if (entry.Success && entry.Value.Operation == NatsKVOperation.Put && AlertCodec.Read(entry.Value.Value, _instruments) is { } held)
            {
                stored = new StoredAlert(held.State, held.FireCount, held.Notified, entry.Value.Revision);
            }
            else if (!entry.Success && entry.Error is not (NatsKVKeyNotFoundException or NatsKVKeyDeletedException))
            {
                throw entry.Error;
            }
        }, cancellationToken).ConfigureAwait(false);
        return (result, stored);
    }

    /// <summary>A read of the alerts bucket, bounded as a write is (<see cref="NatsOptions.PushTimeoutMs"/>); counted nowhere.</summary>
    private async Task<ReplicaWrite> ReadAlertAsync(Func<INatsKVStore, CancellationToken, Task> read, CancellationToken cancellationToken)
    {
        if (!_link.IsOpen)
        {
            return ReplicaWrite.Unavailable;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromMilliseconds(_options.PushTimeoutMs));
        try
        {
            await read(await BucketAsync(AlertsBucket, timeout.Token).ConfigureAwait(false), timeout.Token).ConfigureAwait(false);
            return ReplicaWrite.Written;
        }
        catch (Exception ex) when (ex is NatsException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            LogUnavailable("alert read", ex.Message);
            return ReplicaWrite.Unavailable;
        }
    }

    private void ApplyAlert(NatsKVEntry<ReadOnlyMemory<byte>> change)
    {
        if (change.Operation != NatsKVOperation.Put)
        {
            var removed = _alerts!.Removed(AlertCodec.IdOf(change.Key), change.Revision);
            Interlocked.Increment(ref (removed ? _metrics.PushReceived : _metrics.PushDeduped)[PushKinds.AlertDeleted]);
            return;
        }

        if (AlertCodec.Read(change.Value, _instruments) is not { } alert)
        {
            LogAlertSkipped(change.Key);
            return;
        }

        // Deduped: this daemon's own write coming back, or a state it already holds.
        var applied = _alerts!.Apply(alert, change.Revision);
        Interlocked.Increment(ref (applied ? _metrics.PushReceived : _metrics.PushDeduped)[alert.FireCount > 0 ? PushKinds.AlertState : PushKinds.Alert]);
    }

    /// <summary>
    /// The ingest purges the alerts bucket's delete markers older than a day, every hour: deleted alerts would
    /// otherwise leave one each, forever (the bucket has no max age: alerts live until deleted). A day is far longer
    /// than any watch stays behind; a daemon that starts later never needed them.
    /// </summary>
    private async Task PurgeAlertDeletesAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromHours(1), _time, ct).ConfigureAwait(false);
                await PurgeAlertDeletesOnceAsync(TimeSpan.FromDays(1), ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopped.
        }
    }

    /// <summary>One purge of delete markers older than <paramref name="olderThan"/>; false when NATS did not answer.</summary>
    internal async Task<bool> PurgeAlertDeletesOnceAsync(TimeSpan olderThan, CancellationToken ct)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromMilliseconds(Math.Max(_options.PushTimeoutMs, _options.WarmTimeoutMs)));
            var bucket = await BucketAsync(AlertsBucket, timeout.Token).ConfigureAwait(false);
            await bucket.PurgeDeletesAsync(new NatsKVPurgeOpts { DeleteMarkersThreshold = olderThan }, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is NatsException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            LogWriteFailed(AlertsBucket, ex.Message, TimeSpan.FromHours(1).TotalSeconds);
            return false;
        }
    }

    [LoggerMessage(EventId = 947, Level = LogLevel.Warning, Message = "Alert {Key} in the alerts bucket is not one this daemon can hold (unknown instrument or condition): not listed here")]
    private partial void LogAlertSkipped(string key);
}
