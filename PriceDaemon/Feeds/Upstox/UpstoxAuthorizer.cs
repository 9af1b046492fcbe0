using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace PriceDaemon.Feeds.Upstox;

/// <summary>Upstox refused the access token (HTTP 401 or 403): retrying with the same token cannot help.</summary>
internal sealed class UpstoxAuthenticationException : Exception
{
    public UpstoxAuthenticationException(int statusCode, string step)
        : base($"{step} refused the access token (HTTP {statusCode})")
    {
        StatusCode = statusCode;
    }

    public int StatusCode { get; }
}

/// <summary>
/// <c>GET /v3/feed/market-data-feed/authorize</c>: trades the access token for a single-use <c>wss</c> URL,
/// so it is called before every connection attempt.
/// </summary>
internal sealed class UpstoxAuthorizer
{
    public const string AuthorizePath = "v3/feed/market-data-feed/authorize";

    private readonly HttpClient _http;
    private readonly Uri _endpoint;

    public UpstoxAuthorizer(HttpClient http, string baseUrl)
    {
        _http = http;
        _endpoint = new Uri(new Uri(baseUrl.TrimEnd('/') + "/"), AuthorizePath);
    }

    public async Task<Uri> AuthorizeAsync(string token, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, _endpoint);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
        {
            throw new UpstoxAuthenticationException((int)response.StatusCode, "authorize");
        }

        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"authorize answered HTTP {(int)response.StatusCode}", null, response.StatusCode);
        }

        var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        return ParseRedirect(body);
    }

    /// <summary>Reads <c>data.authorized_redirect_uri</c> (or the deprecated camelCase twin) from the answer.</summary>
    internal static Uri ParseRedirect(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("data", out var data)
                && data.ValueKind == JsonValueKind.Object
                && (data.TryGetProperty("authorized_redirect_uri", out var uri) || data.TryGetProperty("authorizedRedirectUri", out uri))
                && uri.ValueKind == JsonValueKind.String
                && Uri.TryCreate(uri.GetString(), UriKind.Absolute, out var wss)
                && wss.Scheme is "wss" or "ws")
            {
                return wss;
            }
        }
        catch (JsonException)
        {
        }

        throw new InvalidDataException("authorize answered without a ws(s) data.authorized_redirect_uri");
    }
}

/// <summary>
/// The access token: the first line of <see cref="UpstoxFeedOptions.TokenFile"/> when set (read again on every
/// connection attempt, so a daily token is swapped without a restart), else <see cref="UpstoxFeedOptions.AccessToken"/>.
/// </summary>
internal sealed class UpstoxTokenSource
{
    private readonly UpstoxFeedOptions _options;

    public UpstoxTokenSource(UpstoxFeedOptions options)
    {
        _options = options;
    }

    /// <summary>Where the token comes from, for log lines (never the token itself).</summary>
    public string Origin => _options.TokenFile.Length > 0 ? $"token file {_options.TokenFile}" : "Feed:Upstox:AccessToken";

    /// <summary>The token now, or null when there is none (no file yet, empty file, no setting).</summary>
    public string? Current()
    {
        if (_options.TokenFile.Length == 0)
        {
            return _options.AccessToken.Trim() is { Length: > 0 } configured ? configured : null;
        }

        try
        {
            using var reader = new StreamReader(_options.TokenFile);
            while (reader.ReadLine() is { } line)
            {
                if (line.Trim() is { Length: > 0 } token)
                {
                    return token;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }

        return null;
    }
}
