using System.Net;
using Microsoft.Extensions.DependencyInjection;
using NATS.Client.Core;
using NATS.Net;
using PriceDaemon.Alerts;
using PriceDaemon.Nats;
using PriceDaemon.Push;
using PriceDaemon.Tests.Alerts;
using PriceDaemon.Tests.Push;
using PriceDaemon.Tests.Security;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Nats;

/// <summary>
/// Users' alerts across a NATS deployment, through a real <c>nats-server -js</c>: daemon hosts in this process, two edges
/// (<c>Feed:Source=Nats</c>) and an ingest (<c>Nats:Publish=true</c>) whose ticks the test writes. No publisher key on
/// any of them: alerts share the inbox without one. The alerts bucket is the store; the ingest alone evaluates.
/// </summary>
[NonParallelizable]
public sealed partial class NatsAlertTests() : NatsServerTests("pricedaemon-natsalerts-")
{
    private const string Reliance = "NSE_EQ|INE002A01018";
    private const string Tcs = "NSE_EQ|INE467B01029";

    [Test]
    public async Task Alert_CreatedOnOneEdge_IsListedOnTheOther_AndDeletedThereIsGoneEverywhere()
    {
        var (edgeA, edgeB) = (await StartAsync(edge: true), await StartAsync(edge: true));
        using var httpB = edgeB.Http();
        using var httpA = edgeA.Http();
        await using var alice = await Publisher.ConnectAsync(edgeA.WebSocketUri, "alice");
        await alice.SendAsync($$"""{"action":"alert_create","instrument_key":"{{Reliance}}","condition":"above","price":99999,"note":"far"}""");
        var created = (await alice.NextAsync("alert_created")).GetProperty("alert");
        var id = created.GetProperty("id").GetString()!;

        var listed = (await Eventually.ValueAsync(
            async () => (await AlertApi.ListAsync(httpB, "alice")).Where(a => a.GetProperty("id").GetString() == id).ToList() is { Count: 1 } a ? a : null,
            "edge B to list the alert made on edge A"))[0];
        Assert.That((AlertApi.State(listed), listed.GetProperty("note").GetString(), listed.GetProperty("price").GetDouble()), Is.EqualTo(("armed", "far", 99999.0)));
        Assert.That(await AlertApi.ListAsync(httpB, "bob"), Is.Empty, "another user sees none of it");

        await using var onB = await Publisher.ConnectAsync(edgeB.WebSocketUri, "alice");
        await onB.SendAsync($$"""{"action":"alert_delete","id":"{{id}}"}""");
        Assert.That((await onB.NextAsync("alert_deleted")).GetProperty("id").GetString(), Is.EqualTo(id));
        Assert.That(await AlertApi.ListAsync(httpB, "alice"), Is.Empty, "gone on the edge that deleted it, as soon as it answered");
        await Eventually.TrueAsync(() => edgeA.Services.GetRequiredService<AlertBook>().List("alice").Count == 0, "edge A to drop the alert deleted on edge B");
        Assert.That(await AlertApi.ListAsync(httpA, "alice"), Is.Empty);
        Assert.That(await BucketKeysAsync(), Is.Empty, "the bucket holds no key for it");
    }

    [Test]
    public async Task Crossing_OnTheIngest_FiresOneNotification_ToTheUsersSocketsOnBothEdges()
    {
        var ingest = await StartAsync(edge: false);
        var (edgeA, edgeB) = (await StartAsync(edge: true), await StartAsync(edge: true));
        using var httpA = edgeA.Http();
        using var httpB = edgeB.Http();
        await using var aliceA = await Publisher.ConnectAsync(edgeA.WebSocketUri, "alice");
        await using var aliceB = await Publisher.ConnectAsync(edgeB.WebSocketUri, "alice");
        var id = await AlertApi.CreateAsync(httpA, "alice", Reliance, "above", 1500, note: "take profit");
        var marker = await AlertApi.CreateAsync(httpB, "alice", Tcs, "above", 5000);
        await Armed(ingest, "alice", 2);

        // The crossing, then ticks past it that must not fire it again; then the marker fires, after them.
        await ingest.TickAsync(Reliance, 1490);
        await ingest.TickAsync(Reliance, 1501.5);
        await ingest.TickAsync(Reliance, 1520);
        await ingest.TickAsync(Reliance, 1480);
        await ingest.TickAsync(Reliance, 1530);
        // Notified first: different alerts' fires are written at once, so two in one batch may be notified in either order.
        await Eventually.TrueAsync(() => Volatile.Read(ref ingest.Services.GetRequiredService<AlertWriter>().Notified) == 1, "the ingest to notify the RELIANCE alert");
        await ingest.TickAsync(Tcs, 5001);

        foreach (var alice in new[] { aliceA, aliceB })
        {
            var frames = await alice.CollectUntilAsync(f => f.GetProperty("type").GetString() == "notification" && Publisher.Id(f) == $"{marker}-1");
            var fired = frames.Where(f => f.GetProperty("type").GetString() == "notification").ToList();
            Assert.That(fired.Select(Publisher.Id), Is.EqualTo(new[] { $"{id}-1", $"{marker}-1" }), "one notification per fire on each socket of the user");
            var data = fired[0].GetProperty("data");
            Assert.That((fired[0].GetProperty("kind").GetString(), data.GetProperty("last_price").GetDouble(), data.GetProperty("note").GetString()), Is.EqualTo(("price_alert", 1501.5, "take profit")));
        }

        var total = 0L;
        foreach (var daemon in new[] { ingest, edgeA, edgeB })
        {
            total += Volatile.Read(ref daemon.Services.GetRequiredService<AlertBook>().Fired);
        }

        Assert.That(total, Is.EqualTo(2), "two fires (the alert and the marker) over the ingest and both edges: the edges evaluate nothing");
        var listed = (await Eventually.ValueAsync(
            async () => (await AlertApi.ListAsync(httpB, "alice")).Where(a => a.GetProperty("id").GetString() == id && AlertApi.FireCount(a) == 1).ToList() is { Count: 1 } a ? a : null,
            "edge B to list the fired state the ingest wrote"))[0];
        Assert.That((AlertApi.State(listed), listed.GetProperty("fired_price").GetDouble()), Is.EqualTo(("fired", 1501.5)));
        Assert.That(listed.GetProperty("fired_at").GetString(), Is.Not.Null);
    }

    [Test]
    public async Task RepeatAlert_FiresReArmsAndFiresAgain_ThroughTheBucket_AndTheIngestsOwnSocketsGetItToo()
    {
        var ingest = await StartAsync(edge: false);
        var edge = await StartAsync(edge: true);
        using var http = edge.Http();
        await using var onEdge = await Publisher.ConnectAsync(edge.WebSocketUri, "alice");
        await using var onIngest = await Publisher.ConnectAsync(ingest.WebSocketUri, "alice");
        var id = await AlertApi.CreateAsync(http, "alice", Reliance, "above", 1500, repeat: true);
        await Armed(ingest, "alice", 1);

        // Fires, re-arms past the 0.5 % band (below 1492.5), fires again: each state written over the last one's revision.
        await ingest.TickAsync(Reliance, 1501);
        Assert.That(Publisher.Id(await onEdge.NextAsync("notification")), Is.EqualTo($"{id}-1"));
        await ingest.TickAsync(Reliance, 1490);
        await ingest.TickAsync(Reliance, 1502);
        Assert.That(Publisher.Id(await onEdge.NextAsync("notification")), Is.EqualTo($"{id}-2"));
        var onIngestIds = new[] { await onIngest.NextAsync("notification"), await onIngest.NextAsync("notification") }.Select(Publisher.Id);
        Assert.That(onIngestIds, Is.EqualTo(new[] { $"{id}-1", $"{id}-2" }), "the ingest's own socket of the user");

        var listed = await Eventually.ValueAsync(
            async () => (await AlertApi.ListAsync(http, "alice")).Where(a => AlertApi.FireCount(a) == 2).ToList() is { Count: 1 } a ? a : null,
            "the edge to list the second fire");
        Assert.That((AlertApi.State(listed[0]), listed[0].GetProperty("fired_price").GetDouble()), Is.EqualTo(("resetting", 1502.0)));
        Assert.That(ingest.Services.GetRequiredService<AlertWriter>().Conflicts, Is.Zero, "each write went over the revision of the one before");
        Assert.That(ingest.Services.GetRequiredService<NatsMetrics>().PushReceived[PushKinds.AlertState], Is.Zero, "its own writes coming back are not counted as received");
    }

    [Test]
    public async Task IngestRestart_DoesNotFireAFiredOneShotAgain()
    {
        var edge = await StartAsync(edge: true);
        using var http = edge.Http();
        await using var alice = await Publisher.ConnectAsync(edge.WebSocketUri, "alice");
        var id = await AlertApi.CreateAsync(http, "alice", Reliance, "above", 1500);
        var first = await StartAsync(edge: false);
        await Armed(first, "alice", 1);
        await first.TickAsync(Reliance, 1510);
        Assert.That(Publisher.Id(await alice.NextAsync("notification")), Is.EqualTo($"{id}-1"));
        await Eventually.TrueAsync(() => first.Services.GetRequiredService<NatsMetrics>().PushPublished[PushKinds.Notification] == 1, "the first ingest to have written the notification");
        await first.DisposeAsync();
        Daemons.Remove(first);

        // A new ingest loads the bucket: the alert is fired there; the price is still above the line on its first tick.
        var marker = await AlertApi.CreateAsync(http, "alice", Tcs, "above", 5000);
        var second = await StartAsync(edge: false);
        await Armed(second, "alice", 2);
        await second.TickAsync(Reliance, 1520);
        await second.TickAsync(Tcs, 5001);

        var frames = await alice.CollectUntilAsync(f => f.GetProperty("type").GetString() == "notification" && Publisher.Id(f) == $"{marker}-1");
        Assert.That(frames.Count(f => f.GetProperty("type").GetString() == "notification" && Publisher.Id(f) != $"{marker}-1"), Is.Zero, "no second fire of the one-shot");
        Assert.That(Volatile.Read(ref second.Services.GetRequiredService<AlertBook>().Fired), Is.EqualTo(1), "the restarted ingest fired the marker only");
        Assert.That(AlertApi.State(AlertApi.Find(await AlertApi.ListAsync(http, "alice"), id)), Is.EqualTo("fired"));
    }

    [Test]
    public async Task PerUserLimit_HoldsAcrossEdges()
    {
        var (edgeA, edgeB) = (await StartAsync(edge: true, ("Alerts:MaxPerUser", "2")), await StartAsync(edge: true, ("Alerts:MaxPerUser", "2")));
        using var httpA = edgeA.Http();
        using var httpB = edgeB.Http();
        await AlertApi.CreateAsync(httpA, "alice", Reliance, "above", 90_000);
        await AlertApi.CreateAsync(httpB, "alice", Reliance, "below", 10);
        await Eventually.TrueAsync(() => edgeA.Services.GetRequiredService<AlertBook>().List("alice").Count == 2, "edge A to hold the alert made on edge B");

        var (status, body) = await AlertApi.SendAsync(httpA, HttpMethod.Post, "/api/alerts", "alice", $$"""{"instrument_key":"{{Reliance}}","condition":"above","price":95000}""");
        Assert.That((status, body.GetProperty("code").GetString()), Is.EqualTo((HttpStatusCode.Conflict, "alert_limit")), "the third, on the edge that made the first");
        await using var onB = await Publisher.ConnectAsync(edgeB.WebSocketUri, "alice");
        await onB.SendAsync($$"""{"action":"alert_create","instrument_key":"{{Tcs}}","condition":"above","price":9000}""");
        Assert.That((await onB.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("alert_limit"), "and on the other edge's socket");
        Assert.That(await AlertApi.CreateAsync(httpA, "bob", Reliance, "above", 90_000), Does.StartWith("al-"), "another user's limit is their own");
        Assert.That(await BucketKeysAsync(), Has.Count.EqualTo(3));
    }

    [Test]
    public async Task NatsDown_CreateAndDeleteAreRefused_AndNothingIsStored()
    {
        var (edgeA, edgeB) = (await StartAsync(edge: true), await StartAsync(edge: true));
        using var httpA = edgeA.Http();
        var kept = await AlertApi.CreateAsync(httpA, "alice", Reliance, "above", 90_000);
        await using var alice = await Publisher.ConnectAsync(edgeA.WebSocketUri, "alice");
        await alice.NextAsync("status");

        await Server.StopAsync();
        var link = edgeA.Services.GetRequiredService<NatsLink>();
        await Eventually.TrueAsync(() => !link.IsOpen, "edge A to see NATS gone");
        var (status, body) = await AlertApi.SendAsync(httpA, HttpMethod.Post, "/api/alerts", "alice", $$"""{"instrument_key":"{{Reliance}}","condition":"below","price":10}""");
        Assert.That((status, body.GetProperty("code").GetString()), Is.EqualTo((HttpStatusCode.ServiceUnavailable, "alerts_unavailable")));
        await alice.SendAsync($$"""{"action":"alert_create","instrument_key":"{{Tcs}}","condition":"above","price":9000}""");
        Assert.That((await alice.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("alerts_unavailable"));
        await alice.SendAsync($$"""{"action":"alert_delete","id":"{{kept}}"}""");
        Assert.That((await alice.NextAsync("error")).GetProperty("code").GetString(), Is.EqualTo("alerts_unavailable"));
        Assert.That((await AlertApi.ListAsync(httpA, "alice")).Select(a => a.GetProperty("id").GetString()), Is.EqualTo(new[] { kept }), "nothing created, nothing deleted here");

        await Server.StartAsync();
        await Eventually.TrueAsync(() => link.IsOpen, "edge A to reconnect");
        // JetStream may take a moment after the server is back: the delete is retried as a client would.
        await Eventually.ValueAsync(
            async () => (await AlertApi.SendAsync(httpA, HttpMethod.Delete, $"/api/alerts/{kept}", "alice")).Status == HttpStatusCode.OK ? this : null,
            "the retried delete to be taken with NATS back");
        Assert.That(await BucketKeysAsync(), Is.Empty, "the refused create never reached the bucket, and the retried delete did");
        await Eventually.TrueAsync(() => edgeB.Services.GetRequiredService<AlertBook>().List("alice").Count == 0, "edge B to drop it");
    }

    [Test]
    public async Task Fire_OverARevisionThatADeleteReplaced_IsRefused()
    {
        var ingest = await StartAsync(edge: false);
        var replica = ingest.Services.GetRequiredService<IAlertReplica>();
        var instrument = ingest.Instruments[ingest.Id(Reliance)];
        var alert = new Alert("al-raced", "alice", ownedByConnection: false, instrument.Id, Reliance, AlertCondition.Above, 1500, repeat: false, "", DateTimeOffset.UtcNow);
        var (created, revision) = await replica.CreateAsync(AlertBook.Snapshot(alert), CancellationToken.None);
        Assert.That((created, revision), Is.EqualTo((ReplicaWrite.Written, revision)));
        Assert.That(revision, Is.GreaterThan(0UL));

        // An edge deletes it while the evaluator's fire is on its way: the fire, written over the revision it knew, loses.
        Assert.That(await replica.DeleteAsync(alert, CancellationToken.None), Is.EqualTo(ReplicaWrite.Written));
        var fired = new AlertSnapshot(alert, AlertState.Fired, 1, 1510, 1);
        Assert.That((await replica.UpdateAsync(fired, 0, revision, CancellationToken.None)).Result, Is.EqualTo(ReplicaWrite.Duplicate));
        Assert.That(await BucketKeysAsync(), Is.Empty, "the delete stands");
    }

    [Test]
    public async Task TwoIngests_BothEvaluating_NotifyACrossingOnce()
    {
        var (first, second) = (await StartAsync(edge: false), await StartAsync(edge: false));
        var edge = await StartAsync(edge: true);
        using var http = edge.Http();
        await using var alice = await Publisher.ConnectAsync(edge.WebSocketUri, "alice");
        var id = await AlertApi.CreateAsync(http, "alice", Reliance, "above", 1500);
        await Armed(first, "alice", 1);
        await Armed(second, "alice", 1);

        // The same crossing reaches both (two ingests of one feed): one write of the fire wins, the other is refused
        // (or the winner's state reached it first and it had nothing left to fire); the notification id is created once.
        await Task.WhenAll(first.TickAsync(Reliance, 1510).AsTask(), second.TickAsync(Reliance, 1510).AsTask());
        Assert.That(Publisher.Id(await alice.NextAsync("notification")), Is.EqualTo($"{id}-1"));
        var marker = await AlertApi.CreateAsync(http, "alice", Tcs, "above", 5000);
        await Armed(first, "alice", 2);
        await first.TickAsync(Tcs, 5001);
        var frames = await alice.CollectUntilAsync(f => f.GetProperty("type").GetString() == "notification" && Publisher.Id(f) == $"{marker}-1");
        Assert.That(frames.Count(f => f.GetProperty("type").GetString() == "notification"), Is.EqualTo(1), "only the marker after the first fire");
        Assert.That(AlertApi.FireCount(AlertApi.Find(await AlertApi.ListAsync(http, "alice"), id)), Is.EqualTo(1));
        var writers = new[] { first, second }.Select(d => d.Services.GetRequiredService<AlertWriter>()).ToList();
        var books = new[] { first, second }.Select(d => d.Services.GetRequiredService<AlertBook>()).ToList();
        // Two fires of the crossing (the marker is the third): one wrote the bucket, the other's write was refused, and
        // the inbox's create-once id did not have to hold it to one; or one fire only (the winner's state came first).
        Assert.That(writers.Sum(w => Volatile.Read(ref w.FiresStored)), Is.EqualTo(2), "the crossing's state written once, and the marker's");
        Assert.That(books.Sum(b => Volatile.Read(ref b.Fired)) - 2, Is.EqualTo(writers.Sum(w => Volatile.Read(ref w.Conflicts))), "every other fire of the crossing was refused");
    }

    private Task<TestDaemon> StartAsync(bool edge, params (string Key, string Value)[] extra) => StartAsync(edge, null, extra);

    private async Task<TestDaemon> StartAsync(bool edge, Action<IServiceCollection>? configure, params (string Key, string Value)[] extra)
    {
        (string, string)[] role = edge ? [("Feed:Source", "Nats")] : [("Nats:Publish", "true")];
        var daemon = await TestDaemon.StartAsync(Jwts.Settings(
            [("Nats:Url", Server.Url), ("Nats:ReconnectMinMs", "50"), ("Nats:ReconnectMaxMs", "200"), ("Nats:PushTimeoutMs", "1000"), .. role, .. extra]), configure: configure);
        Daemons.Add(daemon);
        return daemon;
    }

    /// <summary>Waits until <paramref name="daemon"/>'s book holds <paramref name="count"/> of the user's alerts (the watch brought them).</summary>
    private static Task Armed(TestDaemon daemon, string user, int count) =>
        Eventually.TrueAsync(() => daemon.Services.GetRequiredService<AlertBook>().List(user).Count == count, $"{count} alerts of {user} in the book");

    private async Task<List<string>> BucketKeysAsync()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = Server.Url });
        var bucket = await connection.CreateKeyValueStoreContext().GetStoreAsync("push-alerts");
        var keys = new List<string>();
        await foreach (var key in bucket.GetKeysAsync())
        {
            keys.Add(key);
        }

        return keys;
    }
}
