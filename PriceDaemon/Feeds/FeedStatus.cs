namespace PriceDaemon.Feeds;

public enum FeedState : byte
{
    Connected,
    Disconnected,
    Error,
}

/// <summary>
/// The one place feeds report their state. Sessions read <see cref="Current"/> on connect and are told of
/// every change through <see cref="Changed"/>.
/// </summary>
public sealed class FeedStatus
{
    public const string ConnectedMessage = "Live market data connected";
    public const string DisconnectedMessage = "Market data disconnected — reconnecting, showing last known prices";

    private readonly Lock _gate = new();
    private (FeedState State, string Message) _current = (FeedState.Disconnected, "Market data connecting");

    public event Action<FeedState, string>? Changed;

    public (FeedState State, string Message) Current
    {
        get
        {
            lock (_gate)
            {
                return _current;
            }
        }
    }

    /// <summary>False while connecting, disconnected or in error: cached prices served now are labelled stale.</summary>
    public bool IsConnected => Current.State == FeedState.Connected;

    public void Report(FeedState state, string message)
    {
        lock (_gate)
        {
            if (_current == (state, message))
            {
                return;
            }

            _current = (state, message);
        }

        Changed?.Invoke(state, message);
    }
}
