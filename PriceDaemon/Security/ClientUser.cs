namespace PriceDaemon.Security;

/// <summary>
/// One user's share of the daemon, held by each of that user's sessions: connections and subscriptions
/// across all of them. The user is the token's <c>sub</c>, or for anonymous clients the remote address.
/// </summary>
internal sealed class ClientUser
{
    private readonly UserLimits _limits;
    private int _subscriptions;

    public ClientUser(string key, UserLimits limits)
    {
        Key = key;
        _limits = limits;
    }

    /// <summary><c>sub:alice</c>, <c>ip:10.1.2.3</c> or <c>connection:42</c>. Never logged above Debug: it may be personal.</summary>
    public string Key { get; }

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
    public bool TryChangeSubscriptions(out TimeSpan retryAfter) => _limits.TryChangeSubscriptions(Key, out retryAfter);
}
