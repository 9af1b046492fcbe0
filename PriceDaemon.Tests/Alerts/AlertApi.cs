using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using PriceDaemon.Tests.Security;

namespace PriceDaemon.Tests.Alerts;

/// <summary>A user's side of <c>/api/alerts</c>, with a token of their own.</summary>
internal static class AlertApi
{
    public static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpClient http, HttpMethod method, string path, string? user, string? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        if (user is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Jwts.Valid(user, DateTimeOffset.UtcNow));
        }

        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    /// <summary>Creates an alert that must be accepted (201); returns its id.</summary>
    public static async Task<string> CreateAsync(HttpClient http, string user, string key, string condition, double value, bool repeat = false, string note = "")
    {
        var field = condition.StartsWith("change_pct", StringComparison.Ordinal) ? "percent" : "price";
        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["instrument_key"] = key,
            ["condition"] = condition,
            [field] = value,
            ["repeat"] = repeat,
            ["note"] = note,
        });
        var (status, created) = await SendAsync(http, HttpMethod.Post, "/api/alerts", user, body);
        Assert.That(status, Is.EqualTo(HttpStatusCode.Created), created.ToString());
        return created.GetProperty("id").GetString()!;
    }

    public static async Task<List<JsonElement>> ListAsync(HttpClient http, string user)
    {
        var (status, body) = await SendAsync(http, HttpMethod.Get, "/api/alerts", user);
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), body.ToString());
        return [.. body.GetProperty("alerts").EnumerateArray()];
    }

    public static JsonElement Find(List<JsonElement> alerts, string id) => alerts.Single(a => a.GetProperty("id").GetString() == id);

    public static int FireCount(JsonElement alert) => alert.GetProperty("fire_count").GetInt32();

    public static string State(JsonElement alert) => alert.GetProperty("state").GetString()!;
}
