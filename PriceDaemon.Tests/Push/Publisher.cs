using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using PriceDaemon.Tests.Security;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Push;

/// <summary>The platform backend's side of the publish API, and the settings of a daemon that takes pushes.</summary>
internal static class Publisher
{
    public const string Key = "the-platform-backend-publisher-key-0123456789";

    /// <summary>Jwt mode (<see cref="Jwts"/>) with <see cref="Key"/> as the publisher key, plus <paramref name="extra"/>.</summary>
    public static Dictionary<string, string> Settings(params (string Key, string Value)[] extra) =>
        Jwts.Settings([("Push:PublisherKey", Key), .. extra]);

    public static string[] Args(params string[] extra) =>
        [.. Settings().Select(p => $"--{p.Key}={p.Value}"), .. extra];

    /// <summary>A socket of <paramref name="subject"/>, signed in with a token in the query string.</summary>
    public static Task<TestClient> ConnectAsync(Uri webSocket, string subject, bool startReading = true) =>
        ConnectAsync(webSocket, subject, DateTimeOffset.UtcNow, startReading);

    /// <summary>As above, with a token valid around <paramref name="now"/> on the daemon's (fake) clock.</summary>
    public static Task<TestClient> ConnectAsync(Uri webSocket, string subject, DateTimeOffset now, bool startReading = true) =>
        TestClient.ConnectAsync(new Uri(webSocket + "?token=" + Uri.EscapeDataString(Jwts.Valid(subject, now))), startReading);

    public static async Task<(HttpStatusCode Status, JsonElement Body)> PublishAsync(
        HttpClient http, string subject, string body, string? credential = Key, string contentType = "application/json")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/publish/users/{Uri.EscapeDataString(subject)}")
        {
            Content = new StringContent(body, Encoding.UTF8, contentType),
        };
        if (credential is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", credential);
        }

        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    /// <summary>Publishes a notification that must be accepted (202) and returns its id.</summary>
    public static async Task<string> NotifyAsync(HttpClient http, string subject, string id, string kind = "trade", string data = "{\"qty\":10}")
    {
        var (status, body) = await PublishAsync(http, subject, $$"""{"id":"{{id}}","kind":"{{kind}}","data":{{data}}}""");
        Assert.That(status, Is.EqualTo(HttpStatusCode.Accepted), body.ToString());
        return body.GetProperty("id").GetString()!;
    }

    public static string Id(JsonElement frame) => frame.GetProperty("id").GetString()!;

    public static bool Replayed(JsonElement frame) => frame.TryGetProperty("replayed", out var r) && r.GetBoolean();

    public static Task<(HttpStatusCode Status, JsonElement Body)> AnnounceAsync(
        HttpClient http, string id, string level, string message, DateTimeOffset expiresAt, string credential = Publisher.Key) =>
        PostAnnouncementAsync(http, JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["id"] = id,
            ["level"] = level,
            ["message"] = message,
            ["expires_at"] = expiresAt.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
        }), credential);

    /// <summary><c>PUT /api/topics/{topic}</c>: the answer's status, and its body (<c>{"topic","seq"}</c> or an error).</summary>
    public static Task<(HttpStatusCode Status, JsonElement Body)> SetTopicAsync(HttpClient http, string topic, string body, string credential = Key) =>
        SendAsync(http, HttpMethod.Put, $"/api/topics/{topic}", body, credential);

    public static async Task<HttpStatusCode> DeleteAnnouncementAsync(HttpClient http, string id) =>
        (await SendAsync(http, HttpMethod.Delete, $"/api/announcements/{id}", null, Key)).Status;

    private static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpClient http, HttpMethod method, string path, string? body, string credential)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", credential);
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    public static async Task<(HttpStatusCode Status, JsonElement Body)> PostAnnouncementAsync(HttpClient http, string body, string credential = Publisher.Key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/announcements") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", credential);
        using var response = await http.SendAsync(request);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }
}
