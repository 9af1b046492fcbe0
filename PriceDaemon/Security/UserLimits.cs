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
    private readonly PartitionedRateLimiter<string> _changes;
    private int _connections;

    public UserLimits(IOptions<LimitsOptions> options, TimeProvider time)
    {
        _options = options.Value;
        var window = TimeSpan.FromSeconds(_options.SubscriptionChangeWindowSeconds);
        var limit = _options.SubscriptionChangesPerWindow;
        // Partitions outlive connections, so reconnecting does not reset a user's budget; an idle partition
        // (a full budget for a while) is dropped by the partitioned limiter.
        _changes = PartitionedRateLimiter.Create<string, string>(
            user => RateLimitPartition.Get(user, _ => new WindowRateLimiter(limit, window, time)),
            StringComparer.Ordinal);
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

    /// <summary>Gives back what <see cref="TryAdmit"/> took. The session has released its subscriptions first.</summary>
    public void Release(ClientUser user, IPAddress? address)
    {
        lock (_gate)
        {
            _connections--;
            if (--user.Connections == 0)
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
        using var lease = _changes.AttemptAcquire(userKey);
        if (lease.IsAcquired)
        {
            retryAfter = TimeSpan.Zero;
            return true;
        }

        retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(_options.SubscriptionChangeWindowSeconds);
        return false;
    }

    public void Dispose() => _changes.Dispose();
}
