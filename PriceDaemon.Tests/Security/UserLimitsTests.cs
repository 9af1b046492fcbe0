using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PriceDaemon.Security;
using PriceDaemon.Sockets;

namespace PriceDaemon.Tests.Security;

/// <summary>The per-user subscription-change budget, on a fake clock.</summary>
public sealed class UserLimitsTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 26, 9, 15, 0, TimeSpan.Zero));

    private UserLimits Create(int changes = 2) =>
        new(Options.Create(new LimitsOptions { SubscriptionChangesPerWindow = changes, SubscriptionChangeWindowSeconds = 60 }), _time);

    [Test]
    public void ABudget_IsPerUser_SaysHowLongToWait_AndComesBackWithTheNextWindow()
    {
        using var limits = Create();
        Assert.That(limits.TryChangeSubscriptions("sub:alice", out _), Is.True);
        _time.Advance(TimeSpan.FromSeconds(20));
        Assert.That(limits.TryChangeSubscriptions("sub:alice", out _), Is.True);
        Assert.That(limits.TryChangeSubscriptions("sub:alice", out var wait), Is.False);
        Assert.That(wait, Is.EqualTo(TimeSpan.FromSeconds(40)));
        Assert.That(limits.TryChangeSubscriptions("sub:bob", out _), Is.True, "one user's use never counts against another's");

        _time.Advance(TimeSpan.FromSeconds(40));
        Assert.That(limits.TryChangeSubscriptions("sub:alice", out _), Is.True);
    }

    [Test]
    public void UsersWhoseWindowHasPassed_AreForgotten_AndThoseStillInOneAreNot()
    {
        using var limits = Create(changes: 1);
        for (var i = 0; i < 64; i++)
        {
            Assert.That(limits.TryChangeSubscriptions($"connection:{i}", out _), Is.True);
        }

        // The next new user finds 64 kept, all past their window: they are swept.
        _time.Advance(TimeSpan.FromSeconds(61));
        Assert.That(limits.TryChangeSubscriptions("sub:alice", out _), Is.True);
        Assert.That(limits.ChangeLimiters, Is.EqualTo(1));

        // 64 again, all inside their window: a sweep keeps every one, and alice's spent budget with hers
        // (reconnecting does not reset it).
        _time.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < 63; i++)
        {
            Assert.That(limits.TryChangeSubscriptions($"sub:user{i}", out _), Is.True);
        }

        Assert.That(limits.TryChangeSubscriptions("sub:late", out _), Is.True);
        Assert.That(limits.ChangeLimiters, Is.EqualTo(65));
        Assert.That(limits.TryChangeSubscriptions("sub:alice", out _), Is.False);
    }

    [Test]
    public void AConnectionsOwnUser_HasTheSameBudget_KeptWithItAndInNoMap()
    {
        using var limits = Create();
        Assert.That(limits.TryAdmitConnection(1, out var first), Is.EqualTo(Admit.Admitted));
        Assert.That(limits.TryAdmitConnection(2, out var second), Is.EqualTo(Admit.Admitted));
        Assert.That(first!.Key, Is.EqualTo("connection:1"));
        Assert.That(first.TryChangeSubscriptions(out _), Is.True);
        _time.Advance(TimeSpan.FromSeconds(20));
        Assert.That(first.TryChangeSubscriptions(out _), Is.True);
        Assert.That(first.TryChangeSubscriptions(out var wait), Is.False);
        Assert.That(wait, Is.EqualTo(TimeSpan.FromSeconds(40)));
        Assert.That(second!.TryChangeSubscriptions(out _), Is.True, "one connection's use never counts against another's");
        Assert.That(limits.ChangeLimiters, Is.EqualTo(0), "a connection's own budget is no limiter in the map");

        _time.Advance(TimeSpan.FromSeconds(40));
        Assert.That(first.TryChangeSubscriptions(out _), Is.True);
        Assert.That(limits.Connections, Is.EqualTo(2));
        limits.Release(first, null);
        limits.Release(second, null);
        Assert.That(limits.Connections, Is.EqualTo(0));
    }

    [Test]
    public void AConnectionsOwnUser_IsRefused_WhenTheDaemonIsFull()
    {
        using var limits = new UserLimits(Options.Create(new LimitsOptions { MaxConnections = 1 }), _time);
        Assert.That(limits.TryAdmitConnection(1, out _), Is.EqualTo(Admit.Admitted));
        Assert.That(limits.TryAdmitConnection(2, out var refused), Is.EqualTo(Admit.ServerFull));
        Assert.That(refused, Is.Null);
        Assert.That(limits.TryAdmit("sub:alice", null, out _), Is.EqualTo(Admit.ServerFull), "both kinds count toward one limit");
    }
}
