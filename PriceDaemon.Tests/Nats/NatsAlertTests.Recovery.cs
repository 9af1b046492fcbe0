using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using NATS.Client.Core;
using NATS.Net;
using PriceDaemon.Alerts;
using PriceDaemon.Nats;
using PriceDaemon.Push;
using PriceDaemon.Tests.Alerts;
using PriceDaemon.Tests.Push;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Nats;

/// <summary>
/// What the review of alerts over NATS found (issue 18): a fire whose state write's answer was lost, a stop between the
/// state and the notification, two evaluators of one crossing, a daemon that has not loaded the bucket, a delete that
/// overtakes a create, and delete markers piling up. The real nats-server; a lost answer is a replica that stores the
/// write and then reports NATS away, as a timeout after the store does.
/// </summary>
public sealed partial class NatsAlertTests
{
    [Test]
    public async Task Fire_WhoseStateWriteAnswerWasLost_IsStillNotifiedOnce()
    {
        LosingReplica? losing = null;
        var ingest = await StartAsync(edge: false, services =>
        {
            services.RemoveAll<IAlertReplica>();
            services.AddSingleton<IAlertReplica>(sp => losing = new LosingReplica(sp.GetRequiredService<NatsPushes>()));
        });
        var edge = await StartAsync(edge: true);
        using var http = edge.Http();
        await using var alice = await Publisher.ConnectAsync(edge.WebSocketUri, "alice");
        var id = await AlertApi.CreateAsync(http, "alice", Reliance, "above", 1500);
        await Armed(ingest, "alice", 1);

        // NATS stores the fire's state; its answer is lost. The retry's write is refused (the key moved on), the writer
        // reads the key, finds this fire stored, and creates the notification.
        await ingest.TickAsync(Reliance, 1510);
        Assert.That(Publisher.Id(await alice.NextAsync("notification")), Is.EqualTo($"{id}-1"));
        Assert.That(losing!.Lost, Is.EqualTo(1), "the first state write was stored and its answer dropped");
        var writer = ingest.Services.GetRequiredService<AlertWriter>();
        Assert.That((Volatile.Read(ref writer.FiresStored), Volatile.Read(ref writer.Notified)), Is.EqualTo((0L, 1L)), "no second state write; one notification");
        var stored = await Eventually.ValueAsync(async () => await ValueAsync(id) is { } v && Field(v, "nf") == 1 ? v : null, "the fire marked notified");
        Assert.That(Field(stored, "fc"), Is.EqualTo(1));
    }

    [Test]
    public async Task StopBetweenTheStateAndTheNotification_TheIngestsNextStartNotifiesOnce()
    {
        var edge = await StartAsync(edge: true);
        using var http = edge.Http();
        await using var alice = await Publisher.ConnectAsync(edge.WebSocketUri, "alice");
        var id = await AlertApi.CreateAsync(http, "alice", Reliance, "above", 1500);

        // What an ingest killed right after writing the fire leaves: the bucket says fired (fc 1), nothing notified (nf 0).
        var instrument = edge.Instruments[edge.Id(Reliance)];
        var alert = new Alert(id, "alice", ownedByConnection: false, instrument.Id, Reliance, AlertCondition.Above, 1500, repeat: false, "", DateTimeOffset.UtcNow);
        await using (var connection = new NatsConnection(new NatsOpts { Url = Server.Url }))
        {
            var bucket = await connection.CreateKeyValueStoreContext().GetStoreAsync("push-alerts");
            await bucket.PutAsync(AlertCodec.Key(alert), AlertCodec.Write(new AlertSnapshot(alert, AlertState.Fired, 1_000, 1510, 1), notified: 0));
        }

        var ingest = await StartAsync(edge: false);
        Assert.That(Publisher.Id(await alice.NextAsync("notification")), Is.EqualTo($"{id}-1"), "created by the ingest that loaded the fire");
        await Eventually.ValueAsync(async () => await ValueAsync(id) is { } v && Field(v, "nf") == 1 ? v : null, "the fire marked notified");
        Assert.That(Volatile.Read(ref ingest.Services.GetRequiredService<AlertBook>().Fired), Is.Zero, "nothing fired again: the one-shot is fired");

        // Another start finds it marked: nothing to create (the marker's notification comes next, alone).
        await ingest.DisposeAsync();
        Daemons.Remove(ingest);
        var marker = await AlertApi.CreateAsync(http, "alice", Tcs, "above", 5000);
        var again = await StartAsync(edge: false);
        await Armed(again, "alice", 2);
        await again.TickAsync(Tcs, 5001);
        var frames = await alice.CollectUntilAsync(f => f.GetProperty("type").GetString() == "notification" && Publisher.Id(f) == $"{marker}-1");
        Assert.That(frames.Count(f => f.GetProperty("type").GetString() == "notification"), Is.EqualTo(1), "only the marker");
    }

    [Test]
    public async Task Evaluator_KeepsTheRevisionOfItsOwnState_WhenAnotherEvaluatorsWriteOfTheSameFireArrives()
    {
        var ingest = await StartAsync(edge: false);
        var edge = await StartAsync(edge: true);
        using var http = edge.Http();
        await using var alice = await Publisher.ConnectAsync(edge.WebSocketUri, "alice");
        var id = await AlertApi.CreateAsync(http, "alice", Reliance, "above", 1500);
        await Armed(ingest, "alice", 1);
        var book = ingest.Services.GetRequiredService<AlertBook>();
        await ingest.TickAsync(Reliance, 1510);
        Assert.That(Publisher.Id(await alice.NextAsync("notification")), Is.EqualTo($"{id}-1"));

        // Another evaluator's write of the same fire, at a later revision: its state is not taken, nor its revision,
        // so a write over what this one holds is refused and reads the store instead of overwriting it.
        var held = ingest.Services.GetRequiredService<AlertBook>().List("alice").Single();
        var before = book.RevisionOf(held.Alert);
        var theirs = new Alert(id, "alice", ownedByConnection: false, held.Alert.InstrumentId, Reliance, AlertCondition.Above, 1500, repeat: false, "", held.Alert.CreatedAt)
        {
            State = AlertState.Fired, FireCount = 1, FiredPrice = 1511,
        };
        Assert.That(book.Apply(theirs, before + 1_000), Is.False, "nothing changed here");
        Assert.That((book.RevisionOf(held.Alert), book.Current(held.Alert).FiredPrice), Is.EqualTo((before, 1510.0)));
    }

    [Test]
    public async Task BeforeTheAlertsBucketIsLoaded_AlertRequestsAreUnavailable_NotAnEmptyList()
    {
        await Server.StopAsync();
        var edge = await StartAsync(edge: true, ("Nats:WarmTimeoutMs", "200"));
        using var http = edge.Http();
        var (status, body) = await AlertApi.SendAsync(http, HttpMethod.Get, "/api/alerts", "alice");
        Assert.That((status, body.GetProperty("code").GetString()), Is.EqualTo((HttpStatusCode.ServiceUnavailable, "alerts_unavailable")));
        await using (var alice = await Publisher.ConnectAsync(edge.WebSocketUri, "alice"))
        {
            await alice.SendAsync("""{"action":"alert_list","req":"l1"}""");
            var error = await alice.NextAsync("error");
            Assert.That((error.GetProperty("code").GetString(), error.GetProperty("req").GetString()), Is.EqualTo(("alerts_unavailable", "l1")));
        }

        await Server.StartAsync();
        await Eventually.TrueAsync(() => edge.Services.GetRequiredService<AlertBook>().Ready, "the edge to load the bucket once NATS answers");
        Assert.That(await AlertApi.ListAsync(http, "alice"), Is.Empty);
    }

    [Test]
    public async Task CreateComingBackAfterItsDelete_DoesNotPutTheAlertBack()
    {
        var edge = await StartAsync(edge: true);
        var book = edge.Services.GetRequiredService<AlertBook>();
        var instrument = edge.Instruments[edge.Id(Reliance)];
        var alert = new Alert("al-late", "alice", ownedByConnection: false, instrument.Id, Reliance, AlertCondition.Above, 1500, repeat: false, "", DateTimeOffset.UtcNow);

        // The watch brought its delete (another edge's) before this edge's create resumed and applied revision 5.
        Assert.That(book.Removed("al-late", 6), Is.False, "not held here yet");
        Assert.That(book.Apply(alert, 5), Is.False);
        Assert.That(book.List("alice"), Is.Empty, "the delete stands");
    }

    [Test]
    public async Task Ingest_PurgesTheAlertsBucketsDeleteMarkers()
    {
        var ingest = await StartAsync(edge: false);
        var edge = await StartAsync(edge: true);
        using var http = edge.Http();
        var id = await AlertApi.CreateAsync(http, "alice", Reliance, "above", 90_000);
        Assert.That((await AlertApi.SendAsync(http, HttpMethod.Delete, $"/api/alerts/{id}", "alice")).Status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await MessagesAsync(), Is.EqualTo(1), "the delete marker");

        Assert.That(await ingest.Services.GetRequiredService<NatsPushes>().PurgeAlertDeletesOnceAsync(TimeSpan.FromTicks(1), CancellationToken.None), Is.True);
        Assert.That(await MessagesAsync(), Is.Zero, "nothing left of the deleted alert");
    }

    [Test]
    public async Task IngestWithoutUsersAlerts_SaysItEvaluatesNone()
    {
        var jwt = await StartAsync(edge: false);
        await using var anonymous = await TestDaemon.StartAsync(new Dictionary<string, string> { ["Nats:Url"] = Server.Url, ["Nats:Publish"] = "true" });
        Assert.That(anonymous.Services.GetServices<IHostedService>().OfType<NatsAlertsOffLog>().Count(), Is.EqualTo(1), "Auth:Mode=None: the start-up line");
        Assert.That(jwt.Services.GetServices<IHostedService>().OfType<NatsAlertsOffLog>(), Is.Empty, "the evaluator says nothing");
    }

    private async Task<long> MessagesAsync()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = Server.Url });
        var bucket = await connection.CreateKeyValueStoreContext().GetStoreAsync("push-alerts");
        return (long)(await bucket.GetStatusAsync()).Info.State.Messages;
    }

    /// <summary>The alerts bucket's value (JSON) of alice's alert <paramref name="id"/>; null when it has none.</summary>
    private async Task<string?> ValueAsync(string id)
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = Server.Url });
        var bucket = await connection.CreateKeyValueStoreContext().GetStoreAsync("push-alerts");
        var entry = await bucket.TryGetEntryAsync<byte[]>($"alice.{id}");
        return entry.Success && entry.Value.Value is { } value ? System.Text.Encoding.UTF8.GetString(value) : null;
    }

    private static int Field(string json, string name)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.GetProperty(name).GetInt32();
    }

    /// <summary>The ingest's real replica, but the first state write's answer is lost after NATS stored it.</summary>
    private sealed class LosingReplica(NatsPushes inner) : IAlertReplica
    {
        public int Lost;

        public bool Evaluates => inner.Evaluates;

        public Task<(ReplicaWrite Result, ulong Revision)> CreateAsync(AlertSnapshot alert, CancellationToken cancellationToken) => inner.CreateAsync(alert, cancellationToken);

        public Task<ReplicaWrite> DeleteAsync(Alert alert, CancellationToken cancellationToken) => inner.DeleteAsync(alert, cancellationToken);

        public Task<(ReplicaWrite Result, StoredAlert? Stored)> ReadAsync(Alert alert, CancellationToken cancellationToken) => inner.ReadAsync(alert, cancellationToken);

        public async Task<(ReplicaWrite Result, ulong Revision)> UpdateAsync(AlertSnapshot alert, int notified, ulong revision, CancellationToken cancellationToken)
        {
            var written = await inner.UpdateAsync(alert, notified, revision, cancellationToken);
            return written.Result == ReplicaWrite.Written && Interlocked.CompareExchange(ref Lost, 1, 0) == 0 ? (ReplicaWrite.Unavailable, 0) : written;
        }
    }
}
