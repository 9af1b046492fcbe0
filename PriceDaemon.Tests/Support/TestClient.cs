using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace PriceDaemon.Tests.Support;

/// <summary>A real <see cref="ClientWebSocket"/> with a background reader that queues every text frame as parsed JSON.</summary>
internal sealed class TestClient : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private readonly ClientWebSocket _socket = new();
    private readonly Channel<JsonElement> _frames = Channel.CreateUnbounded<JsonElement>();
    private Task? _reader;

    public WebSocketCloseStatus? CloseStatus { get; private set; }

    public string? CloseDescription { get; private set; }

    public WebSocket Socket => _socket;

    // Every price_update received so far, by instrument key, newest last. Guarded by itself.
    private readonly Dictionary<string, List<JsonElement>> _prices = [];

    /// <summary>Connects; with <paramref name="startReading"/> false the socket is left unread, as a stalled browser tab would.</summary>
    public static async Task<TestClient> ConnectAsync(Uri uri, bool startReading = true)
    {
        var client = new TestClient();
        using var timeout = new CancellationTokenSource(Timeout);
        if (startReading)
        {
            await client._socket.ConnectAsync(uri, timeout.Token);
            client.StartReading();
        }
        else
        {
            // A small fixed receive buffer turns off the kernel's autotuning (up to 32 MiB here), so an
            // unread socket backs up after kilobytes instead of tens of megabytes.
            using var handler = new SocketsHttpHandler
            {
                ConnectCallback = static async (context, ct) =>
                {
                    var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveBufferSize = 4096 };
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                },
            };
            using var invoker = new HttpMessageInvoker(handler, disposeHandler: false);
            await client._socket.ConnectAsync(uri, invoker, timeout.Token);
        }

        return client;
    }

    public void StartReading() => _reader ??= Task.Run(ReadLoopAsync);

    public Task SendAsync(string text) => _socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

    public Task SubscribeAsync(params string[] keys) => SendAsync(JsonSerializer.Serialize(new { action = "subscribe", instruments = keys }));

    public Task UnsubscribeAsync(params string[] keys) => SendAsync(JsonSerializer.Serialize(new { action = "unsubscribe", instruments = keys }));

    /// <summary>Next frame of <paramref name="type"/>; frames of other types before it are skipped (prices stay in <see cref="PricesOf"/>).</summary>
    public async Task<JsonElement> NextAsync(string type, Func<JsonElement, bool>? match = null)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        while (true)
        {
            JsonElement frame;
            try
            {
                frame = await _frames.Reader.ReadAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no '{type}' frame within {Timeout.TotalSeconds} s");
            }
            catch (ChannelClosedException)
            {
                throw new InvalidOperationException($"socket closed ({CloseStatus} {CloseDescription}) before a '{type}' frame");
            }

            if (frame.GetProperty("type").GetString() == type && (match is null || match(frame)))
            {
                return frame;
            }
        }
    }

    /// <summary>Next price_update for <paramref name="key"/> (optionally with exactly <paramref name="price"/>).</summary>
    public Task<JsonElement> NextPriceAsync(string key, double? price = null) => NextAsync("price_update", f =>
        f.GetProperty("instrument_key").GetString() == key
        && (price is null || f.GetProperty("data").GetProperty("last_price").GetDouble() == price));

    /// <summary>Every frame received up to and including the first one that matches, in order.</summary>
    public async Task<List<JsonElement>> CollectUntilAsync(Func<JsonElement, bool> match)
    {
        var frames = new List<JsonElement>();
        using var timeout = new CancellationTokenSource(Timeout);
        while (true)
        {
            var frame = await _frames.Reader.ReadAsync(timeout.Token);
            frames.Add(frame);
            if (match(frame))
            {
                return frames;
            }
        }
    }

    /// <summary>Waits until the server closes the socket.</summary>
    public async Task<WebSocketCloseStatus?> WaitClosedAsync()
    {
        StartReading();
        await _reader!.WaitAsync(Timeout);
        return CloseStatus;
    }

    /// <summary>A copy of the price_update frames received for <paramref name="key"/>, oldest first.</summary>
    public List<JsonElement> PricesOf(string key)
    {
        lock (_prices)
        {
            return _prices.TryGetValue(key, out var list) ? [.. list] : [];
        }
    }

    public double? LastPriceOf(string key) => PricesOf(key) is { Count: > 0 } list ? list[^1].GetProperty("data").GetProperty("last_price").GetDouble() : null;

    public List<long> SeqsOf(string key) => PricesOf(key).Select(f => f.GetProperty("data").GetProperty("seq").GetInt64()).ToList();

    public async ValueTask DisposeAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
            {
            }
        }

        _socket.Dispose();
        if (_reader is not null)
        {
            await _reader.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(static _ => { }, TaskScheduler.Default);
        }
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var count = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await _socket.ReceiveAsync(buffer.AsMemory(count), CancellationToken.None);
                    count += result.Count;
                }
                while (!result.EndOfMessage);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    CloseStatus = _socket.CloseStatus;
                    CloseDescription = _socket.CloseStatusDescription;
                    return;
                }

                var frame = JsonDocument.Parse(buffer.AsMemory(0, count)).RootElement.Clone();
                if (frame.GetProperty("type").GetString() == "price_update")
                {
                    var key = frame.GetProperty("instrument_key").GetString()!;
                    lock (_prices)
                    {
                        if (!_prices.TryGetValue(key, out var list))
                        {
                            _prices[key] = list = [];
                        }

                        list.Add(frame);
                    }
                }

                _frames.Writer.TryWrite(frame);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException)
        {
            CloseStatus ??= _socket.CloseStatus;
        }
        finally
        {
            _frames.Writer.TryComplete();
        }
    }
}
