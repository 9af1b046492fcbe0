using System.Net;
using System.Runtime.ExceptionServices;
using System.Text;
using System.Text.Json;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>
/// The clients of one run, all in this process: each subscribes to a contiguous run of instruments
/// (wrapping), so every instrument has the same number of subscribers. Figures are kept per client by its
/// own receive loop and summed at the end; only the latency histogram is shared.
/// </summary>
internal sealed class LoadRun : IAsyncDisposable
{
    // Threads that connect, handshake and subscribe with blocking calls, one client at a time each: as many
    // subscriptions in flight as the async version had, without the runtime's socket engine on any socket.
    private const int ConnectThreads = 64;
    private static readonly TimeSpan SubscribeTimeout = TimeSpan.FromSeconds(60);

    private readonly Dictionary<byte[], int>.AlternateLookup<ReadOnlySpan<byte>> _keyLookup;
    private readonly List<LoadClient> _clients = [];
    private readonly EpollReceiver _receiver;
    private int _disposed;
    private volatile bool _measuring;
    private volatile bool _frozen;
    private string? _firstProtocolError;
    private long _protocolErrors;

    private LoadRun(IReadOnlyList<string> keys, int subscriptionsPerClient, string channel)
    {
        Channel = channel;
        Keys = keys;
        SubscriptionsPerClient = subscriptionsPerClient;
        var byKey = new Dictionary<byte[], int>(Utf8KeyComparer.Instance);
        for (var i = 0; i < keys.Count; i++)
        {
            byKey[Encoding.UTF8.GetBytes(keys[i])] = i;
        }

        _keyLookup = byKey.GetAlternateLookup<ReadOnlySpan<byte>>();
        _receiver = new EpollReceiver(OnProtocolError);
    }

    public IReadOnlyList<string> Keys { get; }

    /// <summary>The channel every client subscribes to: price, depth or book.</summary>
    public string Channel { get; }

    public int SubscriptionsPerClient { get; }

    public LatencyHistogram Latency { get; } = new();

    public bool Measuring => _measuring;

    /// <summary>While set, clients keep reading but stop updating their last values, so they can be read whole.</summary>
    public bool Frozen => _frozen;

    public int Connections => _clients.Count;

    public long FramesMeasured => _clients.Sum(static c => c.FramesMeasured);

    public long OutOfOrderFrames => _clients.Sum(static c => c.OutOfOrder);

    public long ProtocolErrors => Interlocked.Read(ref _protocolErrors);

    public string? FirstProtocolError => _firstProtocolError;

    public int ClosedConnections => _clients.Count(static c => c.Closed);

    /// <summary>Instrument keys the server lists at <c>GET /api/instruments</c>, in its order.</summary>
    public static async Task<IReadOnlyList<string>> GetInstrumentKeysAsync(HttpClient http, Uri baseUri)
    {
        using var document = JsonDocument.Parse(await http.GetStringAsync(new Uri(baseUri, "/api/instruments")).ConfigureAwait(false));
        return [.. document.RootElement.EnumerateArray().Select(static i => i.GetProperty("instrument_key").GetString()!)];
    }

    /// <summary>Connects and subscribes every client; returns when each has its subscription ack.</summary>
    public static async Task<LoadRun> ConnectAsync(Uri baseUri, IReadOnlyList<string> keys, int clients, int subscriptionsPerClient, CancellationToken ct, string channel = "price")
    {
        if (subscriptionsPerClient > keys.Count)
        {
            throw new InvalidOperationException($"{subscriptionsPerClient} subscriptions per client, but the server lists only {keys.Count} instruments");
        }

        var endpoint = new IPEndPoint(IPAddress.Parse(baseUri.Host), baseUri.Port);
        var run = new LoadRun(keys, subscriptionsPerClient, channel);
        for (var i = 0; i < clients; i++)
        {
            run._clients.Add(new LoadClient(run, i, i * subscriptionsPerClient % keys.Count, subscriptionsPerClient));
        }

        var next = -1;
        Exception? failure = null;
        void ConnectSome()
        {
            int i;
            while (Volatile.Read(ref failure) is null && !ct.IsCancellationRequested && (i = Interlocked.Increment(ref next)) < run._clients.Count)
            {
                try
                {
                    var client = run._clients[i];
                    client.Connect(endpoint, run._receiver, SubscribeTimeout);
                    if (!client.Subscribed.Wait(SubscribeTimeout))
                    {
                        throw new TimeoutException($"client {i}: no subscription ack within {SubscribeTimeout.TotalSeconds} s");
                    }
                }
                catch (Exception ex)
                {
                    Interlocked.CompareExchange(ref failure, ex is AggregateException { InnerException: { } inner } ? inner : ex, null);
                }
            }
        }

        var threads = Enumerable.Range(0, Math.Min(ConnectThreads, clients))
            .Select(n => new Thread(ConnectSome) { IsBackground = true, Name = $"load-generator-connect-{n}" })
            .ToList();
        threads.ForEach(static t => t.UnsafeStart());
        await Task.Run(() => threads.ForEach(static t => t.Join()), CancellationToken.None).ConfigureAwait(false);
        if (failure is not null || ct.IsCancellationRequested)
        {
            await run.DisposeAsync().ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            ExceptionDispatchInfo.Throw(failure!);
        }

        return run;
    }

    public void StartMeasuring() => _measuring = true;

    public void StopMeasuring() => _measuring = false;

    public void Freeze() => _frozen = true;

    public IEnumerable<ClientLastValue> LastValues() => _clients.SelectMany(static c => c.LastValues());

    /// <summary>Global instrument index of a key received in a frame (its UTF-8 bytes as sent), or -1.</summary>
    public int IndexOf(ReadOnlySpan<byte> utf8Key) => _keyLookup.TryGetValue(utf8Key, out var index) ? index : -1;

    public void OnProtocolError(string message)
    {
        if (Interlocked.Increment(ref _protocolErrors) == 1)
        {
            _firstProtocolError = message;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // The receive thread stops first, so it never reads a socket that is being disposed.
        _receiver.Dispose();
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        await Task.WhenAll(_clients.Select(static c => c.ReceiveLoop)).ConfigureAwait(false);
    }
}

/// <summary>One connection's subscriptions and what it last received for each.</summary>
internal sealed class LoadClient : IDisposable
{
    private readonly LoadRun _run;
    private readonly int _first;
    private readonly long[] _seq;
    private readonly double[] _price;
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private RawWebSocketClient? _connection;

    public LoadClient(LoadRun run, int index, int firstInstrument, int subscriptions)
    {
        _run = run;
        Index = index;
        _first = firstInstrument;
        _seq = new long[subscriptions];
        _price = new double[subscriptions];
    }

    public int Index { get; }

    public Task Subscribed => _subscribed.Task;

    public Task ReceiveLoop => _connection?.ReceiveLoop ?? Task.CompletedTask;

    /// <summary>Price frames received while the run was measuring; written only by this client's receive loop.</summary>
    public long FramesMeasured { get; private set; }

    /// <summary>Frames older than one already received for the same instrument: the daemon promises none.</summary>
    public long OutOfOrder { get; private set; }

    public bool Closed { get; private set; }

    public static long UnixMicrosecondsNow() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;

    /// <summary>Connects, hands the socket to <paramref name="receiver"/> and sends the subscription; blocking.</summary>
    public void Connect(IPEndPoint endpoint, EpollReceiver receiver, TimeSpan timeout)
    {
        _connection = RawWebSocketClient.Connect(endpoint, "/api/ws/prices", this, timeout);
        _connection.StartReceiving(receiver);
        var keys = Enumerable.Range(0, _seq.Length).Select(i => JsonSerializer.Serialize(_run.Keys[(_first + i) % _run.Keys.Count]));
        var channel = _run.Channel == "price" ? "" : $"\"channel\":\"{_run.Channel}\",";
        _connection.SendText(Encoding.UTF8.GetBytes($"{{\"action\":\"subscribe\",{channel}\"instruments\":[{string.Join(',', keys)}]}}"));
    }

    public void OnMessage(ReadOnlySpan<byte> json, long receivedUs)
    {
        switch (PriceUpdateScanner.Classify(json))
        {
            case ServerMessageKind.PriceUpdate:
                OnPriceUpdate(json, receivedUs);
                break;
            case ServerMessageKind.Subscribed:
                _subscribed.TrySetResult();
                break;
        }
    }

    public void OnProtocolError(string message) => _run.OnProtocolError($"client {Index}: {message}");

    public void OnClosed()
    {
        Closed = true;
        _subscribed.TrySetException(new IOException($"client {Index}: the connection closed before the subscription was acknowledged"));
    }

    public IEnumerable<ClientLastValue> LastValues()
    {
        for (var slot = 0; slot < _seq.Length; slot++)
        {
            var key = _run.Keys[(_first + slot) % _run.Keys.Count];
            yield return new ClientLastValue(Index, key, _seq[slot] == 0 ? null : new PriceVersion(_seq[slot], _price[slot]));
        }
    }

    public void Dispose() => _connection?.Dispose();

    private void OnPriceUpdate(ReadOnlySpan<byte> json, long receivedUs)
    {
        if (!PriceUpdateScanner.TryScan(json, out var update))
        {
            OnProtocolError($"unreadable price_update: {Encoding.UTF8.GetString(json)}");
            return;
        }

        var index = _run.IndexOf(update.InstrumentKey);
        var slot = index < 0 ? -1 : (index - _first + _run.Keys.Count) % _run.Keys.Count;
        if (slot < 0 || slot >= _seq.Length)
        {
            OnProtocolError($"price_update for an instrument it did not subscribe to: {Encoding.UTF8.GetString(update.InstrumentKey)}");
            return;
        }

        var first = _seq[slot] == 0;
        if (update.Seq < _seq[slot])
        {
            OutOfOrder++;
        }

        if (!_run.Frozen)
        {
            _seq[slot] = update.Seq;
            _price[slot] = update.LastPrice;
        }

        if (_run.Measuring)
        {
            FramesMeasured++;
            // The first frame of a subscription is the snapshot sent on subscribe: its timestamp is the
            // cached price's, not a fresh tick's.
            if (!first)
            {
                _run.Latency.Record(receivedUs - update.TimestampUs);
            }
        }
    }
}

/// <summary>Instrument keys compared as the UTF-8 bytes on the wire, so a lookup per frame transcodes nothing.</summary>
internal sealed class Utf8KeyComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
{
    public static readonly Utf8KeyComparer Instance = new();

    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);

    public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

    public int GetHashCode(ReadOnlySpan<byte> alternate)
    {
        var hash = default(HashCode);
        hash.AddBytes(alternate);
        return hash.ToHashCode();
    }

    public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
}
