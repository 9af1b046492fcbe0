namespace PriceDaemon.Security;

/// <summary>
/// One user's share of the daemon, held by each of that user's sessions: connections and subscriptions
/// across all of them. The user is the token's <c>sub</c>, or for anonymous clients the remote address, or, for an
/// anonymous client exempt from the address limits (loopback: a local proxy's clients), its connection.
/// </summary>
/// <remarks>
/// A connection's own user is never shared, so it is kept in no map and its change budget is a window held here
/// rather than a limiter in <see cref="UserLimits"/>'s: behind a local proxy every client is one, and the key string,
/// both maps' entries and a limiter with its lock were ~0.25 KiB of each idle socket.
/// </remarks>
internal sealed class ClientUser
{
    private readonly UserLimits _limits;
    private readonly string? _key; // null for a connection's own user: built from _connection when asked for
    private readonly long _connection;
    private FixedWindow _changes; // a connection's own user only: its receive loop is the only caller
    private int _subscriptions;

    public ClientUser(string key, UserLimits limits)
    {
        _key = key;
        _limits = limits;
    }

    /// <summary>The user of one anonymous connection, numbered <paramref name="connection"/>.</summary>
    public ClientUser(long connection, UserLimits limits)
    {
        _connection = connection;
        _limits = limits;
    }

    /// <summary><c>sub:alice</c>, <c>ip:10.1.2.3</c> or <c>connection:42</c>. Never logged above Debug: it may be personal.</summary>
    public string Key => _key ?? $"connection:{_connection}";

    /// <summary>The user is one connection: in no map, with its own change budget.</summary>
    public bool IsConnection => _key is null;

    /// <summary>Open connections; changed only under the limiter's lock.</summary>
    internal int Connections { get; set; }

    public int Subscriptions => Volatile.Read(ref _subscriptions);

    /// <summary>Takes one of the user's subscription slots; false when they hold the most they may.</summary>
    public bool TryAddSubscription()
    {
        var limit = _limits.MaxSubscriptionsPerUser;
        while (true)
        {
            var current = Volatile.Read(ref _subscriptions);
            if (current >= limit)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _subscriptions, current + 1, current) == current)
            {
                return true;
            }
        }
    }

    public void RemoveSubscriptions(int count) => Interlocked.Add(ref _subscriptions, -count);

    /// <summary>One subscribe or unsubscribe message; false, with how long to wait, when the user has sent their share.</summary>
    public bool TryChangeSubscriptions(out TimeSpan retryAfter) => IsConnection
        ? _limits.TryChangeSubscriptions(ref _changes, out retryAfter)
        : _limits.TryChangeSubscriptions(Key, out retryAfter);
}
