using System.Net;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using PriceDaemon.Sockets;

namespace PriceDaemon.Security;

internal enum Admit
{
    Admitted,

    /// <summary>The daemon holds <c>Limits:MaxConnections</c>: HTTP 503, try another instance or later.</summary>
    ServerFull,

    /// <summary>This user holds <c>Limits:MaxConnectionsPerUser</c>: HTTP 429.</summary>
    UserFull,

    /// <summary>This address holds <c>Limits:MaxConnectionsPerIp</c>: HTTP 429.</summary>
    AddressFull,
}

/// <summary>
/// Per-user and per-address accounting: connections in total, per user and per IP; subscriptions per user;
/// subscription changes per user. One user's use never counts against another's.
/// </summary>
internal sealed class UserLimits : IDisposable
{
    private readonly LimitsOptions _options;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, ClientUser> _users = [];
    private readonly Dictionary<IPAddress, int> _perAddress = [];
    private readonly TimeProvider _time;

    // One change limiter per user, outliving their connections so that reconnecting does not reset a budget.
    // Limiters whose window has passed (a full budget: forgetting them changes nothing) are swept when the map
    // has doubled since the last sweep. The framework's PartitionedRateLimiter does this with a timer that
    // walks every partition ten times a second: with one partition per loopback connection that was ~8 % of
    // the daemon's CPU in the market-open benchmark.
    private readonly Dictionary<string, WindowRateLimiter> _changes = new(StringComparer.Ordinal);
    private int _sweepAt = MinSweep;
    private int _connections;

    private const int MinSweep = 64;

    public UserLimits(IOptions<LimitsOptions> options, TimeProvider time)
    {
        _options = options.Value;
        _time = time;
    }

    public int MaxSubscriptionsPerUser => _options.MaxSubscriptionsPerUser;

    public bool ExemptLoopback => _options.ExemptLoopback;

    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Counts a new connection for <paramref name="userKey"/> from <paramref name="address"/> (null: not counted per address).</summary>
    public Admit TryAdmit(string userKey, IPAddress? address, out ClientUser? user)
    {
        user = null;
        lock (_gate)
        {
            if (_connections >= _options.MaxConnections)
            {
                return Admit.ServerFull;
            }

            var perAddress = 0;
            if (address is not null && _perAddress.TryGetValue(address, out perAddress) && perAddress >= _options.MaxConnectionsPerIp)
            {
                return Admit.AddressFull;
            }

            if (_users.TryGetValue(userKey, out var existing) && existing.Connections >= _options.MaxConnectionsPerUser)
            {
                return Admit.UserFull;
            }

            user = existing ?? new ClientUser(userKey, this);
            _users[userKey] = user;
            user.Connections++;
            if (address is not null)
            {
                _perAddress[address] = perAddress + 1;
            }

            _connections++;
            return Admit.Admitted;
        }
    }

    /// <summary>
    /// Counts a new connection that is its own user (an anonymous one exempt from the address limits), numbered
    /// <paramref name="connection"/>: only the daemon's limit applies, and the user is kept in no map.
    /// </summary>
    public Admit TryAdmitConnection(long connection, out ClientUser? user)
    {
        user = null;
        lock (_gate)
        {
            if (_connections >= _options.MaxConnections)
            {
                return Admit.ServerFull;
            }

            _connections++;
        }

        user = new ClientUser(connection, this) { Connections = 1 };
        return Admit.Admitted;
    }

    /// <summary>Gives back what <see cref="TryAdmit"/> or <see cref="TryAdmitConnection"/> took. The session has released its subscriptions first.</summary>
    public void Release(ClientUser user, IPAddress? address)
    {
        lock (_gate)
        {
            _connections--;
            if (--user.Connections == 0 && !user.IsConnection)
            {
                _users.Remove(user.Key);
            }

            if (address is not null && _perAddress.TryGetValue(address, out var count))
            {
                if (count <= 1)
                {
                    _perAddress.Remove(address);
                }
                else
                {
                    _perAddress[address] = count - 1;
                }
            }
        }
    }

    public bool TryChangeSubscriptions(string userKey, out TimeSpan retryAfter)
    {
        WindowRateLimiter? limiter;
        lock (_gate)
        {
            if (!_changes.TryGetValue(userKey, out limiter))
            {
                if (_changes.Count >= _sweepAt)
                {
                    SweepIdleLimiters();
                }

                limiter = new WindowRateLimiter(_options.SubscriptionChangesPerWindow, TimeSpan.FromSeconds(_options.SubscriptionChangeWindowSeconds), _time);
                _changes.Add(userKey, limiter);
            }
        }

        using var lease = limiter.AttemptAcquire();
        if (lease.IsAcquired)
        {
            retryAfter = TimeSpan.Zero;
            return true;
        }

        retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(_options.SubscriptionChangeWindowSeconds);
        return false;
    }

    /// <summary>The change budget of a user that is one connection: the same window, held by the user (no lock, no map).</summary>
    public bool TryChangeSubscriptions(ref FixedWindow window, out TimeSpan retryAfter) =>
        window.TryAcquire(1, _options.SubscriptionChangesPerWindow, TimeSpan.FromSeconds(_options.SubscriptionChangeWindowSeconds), _time, out retryAfter);

    /// <summary>Number of users with a change limiter kept; for tests.</summary>
    internal int ChangeLimiters
    {
        get
        {
            lock (_gate)
            {
                return _changes.Count;
            }
        }
    }

    private void SweepIdleLimiters()
    {
        foreach (var (key, limiter) in _changes)
        {
            if (limiter.IdleDuration is not null)
            {
                _changes.Remove(key);
                limiter.Dispose();
            }
        }

        _sweepAt = Math.Max(MinSweep, _changes.Count * 2);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var limiter in _changes.Values)
            {
                limiter.Dispose();
            }

            _changes.Clear();
        }
    }
}
