using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Security;

/// <summary>
/// A real <see cref="ClientWebSocket"/> like <see cref="TestClient"/>, with the handshake under the test's control
/// (headers, subprotocols, Origin, certificate check) and the HTTP status of a refused handshake.
/// </summary>
internal sealed class SecureClient : IAsyncDisposable
{
    private readonly ClientWebSocket _socket;
    private readonly Channel<JsonElement> _frames = Channel.CreateUnbounded<JsonElement>();
    private readonly List<JsonElement> _all = [];
    private readonly Task _reader;

    private SecureClient(ClientWebSocket socket)
    {
        _socket = socket;
        _reader = Task.Run(ReadLoopAsync);
    }

    public ClientWebSocket Socket => _socket;

    public WebSocketCloseStatus? CloseStatus { get; private set; }

    public string? CloseDescription { get; private set; }

    /// <summary>Why the reader stopped without a close frame, if it did.</summary>
    public Exception? Failure { get; private set; }

    /// <summary>Every frame received so far, in order.</summary>
    public List<JsonElement> Frames
    {
        get
        {
            lock (_all)
            {
                return [.. _all];
            }
        }
    }

    public static async Task<SecureClient> ConnectAsync(Uri uri, Action<ClientWebSocketOptions>? configure = null)
    {
        var (client, status, error) = await TryConnectWithErrorAsync(uri, configure);
        return client ?? throw new InvalidOperationException(status == 0
            ? $"the handshake failed before any HTTP response: {error}"
            : $"the handshake was refused with HTTP {status}");
    }

    /// <summary>The client, or null and the HTTP status the daemon refused the handshake with.</summary>
    public static async Task<(SecureClient? Client, int Status)> TryConnectAsync(Uri uri, Action<ClientWebSocketOptions>? configure = null)
    {
        var (client, status, _) = await TryConnectWithErrorAsync(uri, configure);
        return (client, status);
    }

    private static async Task<(SecureClient? Client, int Status, string? Error)> TryConnectWithErrorAsync(Uri uri, Action<ClientWebSocketOptions>? configure)
    {
        var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        configure?.Invoke(socket.Options);
        using var timeout = new CancellationTokenSource(TestClient.Timeout);
        try
        {
            await socket.ConnectAsync(uri, timeout.Token);
        }
        catch (WebSocketException ex)
        {
            var status = (int)socket.HttpStatusCode;
            socket.Dispose();
            return (null, status, ex.InnerException is { } inner ? $"{ex.Message} ({inner.GetType().Name}: {inner.Message})" : ex.Message);
        }

        return (new SecureClient(socket), (int)socket.HttpStatusCode, null);
    }

    public Task SendAsync(string text) => SendAsync(Encoding.UTF8.GetBytes(text));

    public Task SendAsync(byte[] utf8) => _socket.SendAsync(utf8, WebSocketMessageType.Text, true, CancellationToken.None);

    public Task SubscribeAsync(params string[] keys) => SendAsync(JsonSerializer.Serialize(new { action = "subscribe", instruments = keys }));

    public Task UnsubscribeAsync(params string[] keys) => SendAsync(JsonSerializer.Serialize(new { action = "unsubscribe", instruments = keys }));

    /// <summary>The next frame, whatever it is; throws if the socket closes first.</summary>
    public async Task<JsonElement> NextAsync()
    {
        using var timeout = new CancellationTokenSource(TestClient.Timeout);
        try
        {
            return await _frames.Reader.ReadAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no frame within {TestClient.Timeout.TotalSeconds} s");
        }
        catch (ChannelClosedException)
        {
            throw new InvalidOperationException($"socket closed ({CloseStatus} {CloseDescription}) before the next frame");
        }
    }

    /// <summary>Next frame of <paramref name="type"/>; frames of other types before it are skipped.</summary>
    public async Task<JsonElement> NextAsync(string type, Func<JsonElement, bool>? match = null)
    {
        while (true)
        {
            var frame = await NextAsync();
            if (Type(frame) == type && (match is null || match(frame)))
            {
                return frame;
            }
        }
    }

    /// <summary>Subscribes and returns the ack.</summary>
    public async Task<JsonElement> SubscribeAckAsync(params string[] keys)
    {
        await SubscribeAsync(keys);
        return await NextAsync("subscribed");
    }

    /// <summary>Waits until the server closes the socket; the frames before the close stay readable.</summary>
    public async Task<WebSocketCloseStatus?> WaitClosedAsync()
    {
        await _reader.WaitAsync(TestClient.Timeout);
        return CloseStatus;
    }

    public static string? Type(JsonElement frame) => frame.GetProperty("type").GetString();

    public static List<string?> Keys(JsonElement frame, string property) =>
        frame.GetProperty(property).EnumerateArray().Select(e => e.GetString()).ToList();

    public static List<(string? Key, string? Code)> Rejected(JsonElement ack) =>
        ack.GetProperty("rejected").EnumerateArray().Select(r => (r.GetProperty("instrument_key").GetString(), r.GetProperty("code").GetString())).ToList();

    public async ValueTask DisposeAsync()
    {
        if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
            {
            }
        }

        await _reader.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(static _ => { }, TaskScheduler.Default);
        _socket.Dispose();
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
                lock (_all)
                {
                    _all.Add(frame);
                }

                _frames.Writer.TryWrite(frame);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException)
        {
            Failure = ex;
            CloseStatus ??= _socket.CloseStatus;
        }
        finally
        {
            _frames.Writer.TryComplete();
        }
    }
}
