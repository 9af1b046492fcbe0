using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;

namespace PriceDaemon.Benchmarks.Push;

/// <summary>
/// <c>push --url URL [--sockets-url URL] --users N --count M [--concurrency C] [--key K] [--secret S] [--issuer I] [--audience A]</c>:
/// notifications per second through the publish API to connected users. N users hold one socket each (on
/// <c>--sockets-url</c>, by default the same daemon; another edge of a NATS deployment measures the hop between them);
/// M notifications are published round-robin over the users through C concurrent HTTP connections; the clock stops
/// when every socket has all of its own. Against a running daemon in <c>Auth:Mode=Jwt</c> with HS256 tokens signed
/// by the secret, and <c>Push:PublisherKey</c> the key; the defaults are the test suite's.
/// </summary>
internal static class PushCommand
{
    private const int ExitUsage = 2;
    private static readonly TimeSpan DeliveryTimeout = TimeSpan.FromSeconds(120);

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        if (Option(args, "--url") is not { } url || !int.TryParse(Option(args, "--users"), CultureInfo.InvariantCulture, out var users)
            || !int.TryParse(Option(args, "--count"), CultureInfo.InvariantCulture, out var count) || users < 1 || count < users)
        {
            await error.WriteLineAsync("usage: push --url http://127.0.0.1:8080 [--sockets-url URL] --users 100 --count 20000 [--concurrency 8] [--key K] [--secret S] [--issuer I] [--audience A]").ConfigureAwait(false);
            return ExitUsage;
        }

        var concurrency = int.Parse(Option(args, "--concurrency") ?? "8", CultureInfo.InvariantCulture);
        var key = Option(args, "--key") ?? "the-platform-backend-publisher-key-0123456789";
        var tokens = new Tokens(
            Option(args, "--secret") ?? "a-shared-secret-of-at-least-32-bytes!",
            Option(args, "--issuer") ?? "https://backend.campus.test",
            Option(args, "--audience") ?? "pricedaemon");
        var publishTo = new Uri(url);
        var socketsAt = new Uri(Option(args, "--sockets-url") ?? url);
        var perUser = count / users;
        var total = perUser * users;

        var receivers = new Receivers(users, perUser);
        var sockets = new List<ClientWebSocket>();
        try
        {
            for (var u = 0; u < users; u++)
            {
                var socket = new ClientWebSocket();
                await socket.ConnectAsync(new Uri($"ws://{socketsAt.Authority}/api/ws/prices?token={tokens.For($"u{u}")}"), CancellationToken.None).ConfigureAwait(false);
                sockets.Add(socket);
                receivers.Start(socket, u);
            }

            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { BaseAddress = publishTo };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            var run = Guid.NewGuid().ToString("N")[..8]; // ids of their own, so a second run is not refused as repeats
            var next = -1;
            var watch = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < total)
                {
                    var body = $"{{\"id\":\"t-{run}-{i}\",\"kind\":\"trade\",\"data\":{{\"symbol\":\"RELIANCE\",\"qty\":10,\"price\":2451.5}}}}";
                    using var content = new StringContent(body, Encoding.UTF8, "application/json");
                    using var response = await http.PostAsync(new Uri($"/api/publish/users/u{i % users}", UriKind.Relative), content).ConfigureAwait(false);
                    if ((int)response.StatusCode != 202)
                    {
                        throw new InvalidOperationException($"publish {i}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync().ConfigureAwait(false)}");
                    }
                }
            })).ConfigureAwait(false);
            var published = watch.Elapsed;
            await receivers.All.WaitAsync(DeliveryTimeout).ConfigureAwait(false);
            var delivered = watch.Elapsed;
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"users={users} notifications={total} concurrency={concurrency} sockets-on={socketsAt.Authority}: published in {published.TotalSeconds:F2} s ({total / published.TotalSeconds:F0}/s), all delivered in {delivered.TotalSeconds:F2} s ({total / delivered.TotalSeconds:F0}/s)"));
            return 0;
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Abort();
                socket.Dispose();
            }
        }
    }

    private static string? Option(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }

    /// <summary>Counts each user's notifications; completes when every user has all of its own.</summary>
    private sealed class Receivers(int users, int perUser)
    {
        private readonly int[] _received = new int[users];
        private readonly TaskCompletionSource _all = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _remaining = users;

        public Task All => _all.Task;

        public void Start(ClientWebSocket socket, int user) => _ = Task.Run(async () =>
        {
            var buffer = new byte[64 * 1024];
            try
            {
                while (true)
                {
                    var frame = await socket.ReceiveAsync(buffer, CancellationToken.None).ConfigureAwait(false);
                    if (frame.MessageType == WebSocketMessageType.Close)
                    {
                        break;
                    }

                    if (buffer.AsSpan(0, frame.Count).IndexOf("\"notification\""u8) >= 0 && ++_received[user] == perUser && Interlocked.Decrement(ref _remaining) == 0)
                    {
                        _all.TrySetResult();
                    }
                }
            }
            catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException)
            {
                // Aborted at the end of the run, or lost: reported below if it was before all arrived.
            }

            _all.TrySetException(new InvalidOperationException($"user u{user}'s socket closed with {_received[user]} of {perUser}: {socket.CloseStatus} {socket.CloseStatusDescription}"));
        });
    }

    /// <summary>HS256 user tokens, valid for an hour, as the platform's backend signs them.</summary>
    private sealed class Tokens(string secret, string issuer, string audience)
    {
        public string For(string sub)
        {
            var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var header = Base64Url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"u8);
            var payload = Base64Url(Encoding.UTF8.GetBytes($"{{\"sub\":\"{sub}\",\"iss\":\"{issuer}\",\"aud\":\"{audience}\",\"nbf\":{now - 60},\"exp\":{now + 3600}}}"));
            var signature = Base64Url(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{header}.{payload}")));
            return $"{header}.{payload}.{signature}";
        }

        private static string Base64Url(ReadOnlySpan<byte> bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }
}
