// Notifications per second through the publish API to connected users: U users, one socket each, M publishes
// (sequential over C concurrent HTTP connections); time from the first publish until every socket has all of its own.
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;

var baseUri = new Uri(args[0]);
var users = int.Parse(args[1]);
var total = int.Parse(args[2]);
var concurrency = int.Parse(args[3]);
const string Secret = "a-shared-secret-of-at-least-32-bytes!";
const string Key = "the-platform-backend-publisher-key-0123456789";

static string B64(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
string Token(string sub)
{
    var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    var h = B64(Encoding.UTF8.GetBytes("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"));
    var p = B64(Encoding.UTF8.GetBytes($"{{\"sub\":\"{sub}\",\"iss\":\"https://backend.campus.test\",\"aud\":\"pricedaemon\",\"nbf\":{now - 60},\"exp\":{now + 3600}}}"));
    var s = B64(HMACSHA256.HashData(Encoding.UTF8.GetBytes(Secret), Encoding.UTF8.GetBytes($"{h}.{p}")));
    return $"{h}.{p}.{s}";
}

var perUser = total / users;
var received = new int[users];
var done = new TaskCompletionSource();
var remaining = users;
var sockets = new List<ClientWebSocket>();
var ws = new Uri($"ws://{baseUri.Authority}/api/ws/prices");
for (var u = 0; u < users; u++)
{
    var socket = new ClientWebSocket();
    await socket.ConnectAsync(new Uri($"{ws}?token={Token($"u{u}")}"), CancellationToken.None);
    sockets.Add(socket);
    var user = u;
    _ = Task.Run(async () =>
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var r = await socket.ReceiveAsync(buffer, CancellationToken.None);
            if (r.MessageType == WebSocketMessageType.Close) return;
            if (buffer.AsSpan(0, r.Count).IndexOf("\"notification\""u8) >= 0 && ++received[user] == perUser && Interlocked.Decrement(ref remaining) == 0)
                done.TrySetResult();
        }
    });
}

using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { BaseAddress = baseUri };
http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
var next = -1;
var watch = Stopwatch.StartNew();
await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
{
    int i;
    while ((i = Interlocked.Increment(ref next)) < perUser * users)
    {
        var body = $"{{\"id\":\"t-{i}\",\"kind\":\"trade\",\"data\":{{\"symbol\":\"RELIANCE\",\"qty\":10,\"price\":2451.5}}}}";
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await http.PostAsync($"/api/publish/users/u{i % users}", content);
        if ((int)response.StatusCode != 202) throw new InvalidOperationException($"{response.StatusCode}");
    }
}));
var published = watch.Elapsed;
await done.Task.WaitAsync(TimeSpan.FromSeconds(60));
var delivered = watch.Elapsed;
Console.WriteLine($"users={users} notifications={perUser * users} concurrency={concurrency}: published in {published.TotalSeconds:F2} s ({perUser * users / published.TotalSeconds:F0}/s), all delivered in {delivered.TotalSeconds:F2} s ({perUser * users / delivered.TotalSeconds:F0}/s)");
