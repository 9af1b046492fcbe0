using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using PriceDaemon.Http;
using PriceDaemon.Sockets;

namespace PriceDaemon.Push;

/// <summary>
/// The publish API of the platform backend: <c>POST /api/publish/users/{sub}</c> puts a notification in that user's
/// inbox and on every socket the user holds; <c>POST /api/announcements</c> and <c>DELETE /api/announcements/{id}</c>
/// reach every socket. Authenticated by the publisher key alone (<see cref="PushOptions.PublisherKey"/>);
/// a user's JWT is not that key, so it never publishes.
/// </summary>
internal static class PublishEndpoints
{
    private const int MaxSubjectLength = 256;
    private const int MaxIdLength = 128;
    private const int MaxKindLength = 64;

    public static IEndpointRouteBuilder MapPublishEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/publish/users/{sub}", PublishToUserAsync);
        app.MapPost("/api/announcements", PublishAnnouncementAsync);
        app.MapDelete("/api/announcements/{id}", DeleteAnnouncementAsync);
        app.MapPut("/api/topics/{name}", SetTopicAsync);
        return app;
    }

    private static async Task<IResult> PublishToUserAsync(
        string sub, HttpContext context, IOptions<PushOptions> options, NotificationInbox inbox, SessionRegistry sessions, Security.ClientAuthenticator authenticator, TimeProvider time)
    {
        var push = options.Value;
        sub = UserOf(context, sub);
        if (!IsPublisher(context, push.PublisherKey))
        {
            return Unauthorized(context);
        }

        if (authenticator.Mode != Security.AuthMode.Jwt)
        {
            // Anonymous sockets have no user: a notification could reach nobody, and would wait in an inbox no one opens.
            return Error(StatusCodes.Status409Conflict, "no_users", "notifications need Auth:Mode=Jwt: with Auth:Mode=None sockets have no user to deliver to");
        }

        if (sub.Length is 0 or > MaxSubjectLength)
        {
            return Error(StatusCodes.Status400BadRequest, "invalid_user", $"the user (the token's sub) must be 1 to {MaxSubjectLength} characters");
        }

        var (body, failure) = await ReadBodyAsync(context, push.MaxBodyBytes).ConfigureAwait(false);
        if (failure is not null)
        {
            return failure;
        }

        string? id = null;
        string? kind = null;
        var data = "{}";
        using (var document = body!)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return Invalid("the body must be a JSON object like {\"id\":\"trade-8812\",\"kind\":\"trade\",\"data\":{...}}");
            }

            foreach (var property in root.EnumerateObject())
            {
                switch (property.Name)
                {
                    case "id":
                        if (property.Value.ValueKind != JsonValueKind.String || property.Value.GetString() is not { Length: > 0 and <= MaxIdLength } given)
                        {
                            return Invalid($"'id' must be a string of 1 to {MaxIdLength} characters");
                        }

                        id = given;
                        break;
                    case "kind":
                        if (property.Value.ValueKind != JsonValueKind.String || property.Value.GetString() is not { Length: > 0 and <= MaxKindLength } named)
                        {
                            return Invalid($"'kind' must be a string of 1 to {MaxKindLength} characters, like \"trade\"");
                        }

                        kind = named;
                        break;
                    case "data":
                        data = property.Value.GetRawText();
                        break;
                    default:
                        return Invalid($"unknown field '{Truncate(property.Name)}'; expected id, kind and data");
                }
            }
        }

        if (kind is null)
        {
            return Invalid("missing 'kind' (a string like \"trade\")");
        }

        // Without an id of the publisher's, a retry cannot be recognized: each call is a new notification.
        id ??= "n-" + Guid.NewGuid().ToString("N");
        if (context.RequestServices.GetService<IPushReplica>() is { } replica)
        {
            return await PublishSharedAsync(replica, new InboxEntry(sub, id, kind, time.GetUtcNow(), data), inbox, sessions, context.RequestAborted).ConfigureAwait(false);
        }

        var entry = inbox.Add(sub, id, kind, data);
        if (entry is null)
        {
            return Duplicate(id);
        }

        return Accepted(id, PushDelivery.ToUser(sessions, inbox, entry));
    }

    /// <summary>
    /// A NATS deployment: stored in the shared inbox first (an id any daemon stored already is a duplicate), then
    /// delivered to this daemon's sockets; every other daemon delivers it to its own when its watch brings it.
    /// </summary>
    private static async Task<IResult> PublishSharedAsync(IPushReplica replica, InboxEntry entry, NotificationInbox inbox, SessionRegistry sessions, CancellationToken cancellationToken)
    {
        if (inbox.Contains(entry.User, entry.Id))
        {
            Interlocked.Increment(ref inbox.Duplicates);
            return Duplicate(entry.Id);
        }

        switch (await replica.CreateNotificationAsync(entry, cancellationToken).ConfigureAwait(false))
        {
            case ReplicaWrite.Unavailable:
                return Unavailable("notification");
            case ReplicaWrite.Duplicate:
                Interlocked.Increment(ref inbox.Duplicates);
                return Duplicate(entry.Id);
        }

        // False when this daemon's watch brought it back first and delivered it: the same sockets, once.
        var sockets = inbox.Apply(entry, origin: true) == InboxChange.New ? PushDelivery.ToUser(sessions, inbox, entry) : sessions.SessionsOf(entry.User).Length;
        return Accepted(entry.Id, sockets);
    }

    /// <summary>
    /// The user as the publisher wrote it, URL-decoded from the request line: a token's <c>sub</c> may hold '/' (sent as
    /// <c>%2F</c>, which the server leaves encoded in the path so that it does not split the route) or '%' itself.
    /// </summary>
    private static string UserOf(HttpContext context, string routed)
    {
        const string Route = "/api/publish/users/";
        var raw = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget ?? "";
        var at = raw.IndexOf(Route, StringComparison.Ordinal);
        if (at < 0)
        {
            return routed;
        }

        var segment = raw.AsSpan(at + Route.Length);
        var end = segment.IndexOfAny('?', '#');
        return Uri.UnescapeDataString((end < 0 ? segment : segment[..end]).ToString());
    }

    private static IResult Duplicate(string id) =>
        TypedResults.Json(new PublishResult(id, Duplicate: true, Sockets: 0), DaemonJsonContext.Relaxed.PublishResult, statusCode: StatusCodes.Status200OK);

    private static IResult Accepted(string id, int sockets) =>
        TypedResults.Json(new PublishResult(id, Duplicate: false, Sockets: sockets), DaemonJsonContext.Relaxed.PublishResult, statusCode: StatusCodes.Status202Accepted);

    /// <summary>503: NATS did not store the publish in time, so nothing of it was delivered anywhere; the backend retries.</summary>
    private static IResult Unavailable(string what) => Error(StatusCodes.Status503ServiceUnavailable, "nats_unavailable",
        $"NATS did not store the {what} within Nats:PushTimeoutMs; nothing was delivered. Retry with the same id (a write that landed meanwhile answers as a duplicate)");

    private const int MaxMessageLength = 2000;

    /// <summary>
    /// <c>{"id":"maint-1","level":"warning","message":"...","expires_at":"2026-12-01T18:00:00Z"}</c>: to every socket
    /// open now, and to each that opens until <c>expires_at</c>. Anonymous sockets get them too.
    /// </summary>
    private static async Task<IResult> PublishAnnouncementAsync(
        HttpContext context, IOptions<PushOptions> options, AnnouncementBoard board, SessionRegistry sessions, TimeProvider time)
    {
        if (!IsPublisher(context, options.Value.PublisherKey))
        {
            return Unauthorized(context);
        }

        var (body, failure) = await ReadBodyAsync(context, options.Value.MaxBodyBytes).ConfigureAwait(false);
        if (failure is not null)
        {
            return failure;
        }

        string? id = null;
        string? level = null;
        string? message = null;
        DateTimeOffset? expiresAt = null;
        using (var document = body!)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return Invalid("the body must be a JSON object like {\"level\":\"warning\",\"message\":\"...\",\"expires_at\":\"2026-12-01T18:00:00Z\"}");
            }

            foreach (var property in root.EnumerateObject())
            {
                var text = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : null;
                switch (property.Name)
                {
                    case "id":
                        if (text is not { Length: > 0 and <= MaxIdLength })
                        {
                            return Invalid($"'id' must be a string of 1 to {MaxIdLength} characters");
                        }

                        id = text;
                        break;
                    case "level":
                        if (text is null || !AnnouncementBoard.Levels.Contains(text))
                        {
                            return Invalid($"'level' must be one of {string.Join(", ", AnnouncementBoard.Levels)}");
                        }

                        level = text;
                        break;
                    case "message":
                        if (text is not { Length: > 0 and <= MaxMessageLength })
                        {
                            return Invalid($"'message' must be a string of 1 to {MaxMessageLength} characters");
                        }

                        message = text;
                        break;
                    case "expires_at":
                        if (text is null || !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
                        {
                            return Invalid("'expires_at' must be an ISO 8601 time like \"2026-12-01T18:00:00Z\"");
                        }

                        expiresAt = parsed;
                        break;
                    default:
                        return Invalid($"unknown field '{Truncate(property.Name)}'; expected id, level, message and expires_at");
                }
            }
        }

        if (level is null || message is null || expiresAt is null)
        {
            return Invalid($"missing '{(level is null ? "level" : message is null ? "message" : "expires_at")}' (level, message and expires_at are required)");
        }

        if (expiresAt <= time.GetUtcNow())
        {
            return Invalid("'expires_at' is in the past: the announcement would reach no one");
        }

        id ??= "a-" + Guid.NewGuid().ToString("N");
        if (context.RequestServices.GetService<IPushReplica>() is { } replica)
        {
            return await AnnounceSharedAsync(replica, id, level, message, expiresAt.Value, board, sessions, context.RequestAborted).ConfigureAwait(false);
        }

        var (added, announcement) = board.Add(id, level, message, expiresAt.Value);
        if (added == AddResult.Full)
        {
            return TooManyAnnouncements();
        }

        if (added == AddResult.Duplicate || announcement is null)
        {
            return Duplicate(id);
        }

        return Accepted(id, PushDelivery.ToAll(sessions, announcement.Frame));
    }

    /// <summary>
    /// A NATS deployment: the cap and a duplicate are checked on this daemon's copy of the board, the announcement is
    /// stored in the shared bucket, then sent to this daemon's sockets; the others send it when their watch brings it.
    /// </summary>
    private static async Task<IResult> AnnounceSharedAsync(
        IPushReplica replica, string id, string level, string message, DateTimeOffset expiresAt, AnnouncementBoard board, SessionRegistry sessions, CancellationToken cancellationToken)
    {
        switch (board.Admits(id))
        {
            case AddResult.Full:
                return TooManyAnnouncements();
            case AddResult.Duplicate:
                return Duplicate(id);
        }

        var stored = new Announcement(id, level, message, expiresAt, []);
        switch (await replica.AddAnnouncementAsync(stored, cancellationToken).ConfigureAwait(false))
        {
            case ReplicaWrite.Unavailable:
                return Unavailable("announcement");
            case ReplicaWrite.Duplicate:
                return Duplicate(id);
        }

        var sockets = 0;
        board.Apply(id, level, message, expiresAt, a => sockets = PushDelivery.ToAll(sessions, a.Frame));
        return Accepted(id, sockets);
    }

    private static IResult TooManyAnnouncements() => Error(StatusCodes.Status409Conflict, "too_many_announcements",
        $"{AnnouncementBoard.MaxActive} announcements are in force; DELETE one or let one expire first");

    /// <summary>Ends an announcement before it expires: new sockets no longer get it, open ones are told to hide it.</summary>
    private static async Task<IResult> DeleteAnnouncementAsync(string id, HttpContext context, IOptions<PushOptions> options, AnnouncementBoard board, SessionRegistry sessions)
    {
        if (!IsPublisher(context, options.Value.PublisherKey))
        {
            return Unauthorized(context);
        }

        // A NATS deployment: removed from the shared bucket first (every daemon's watch tells its sockets, this one's
        // possibly before the line below), then here.
        var shared = false;
        if (board.Contains(id) && context.RequestServices.GetService<IPushReplica>() is { } replica)
        {
            if (await replica.RemoveAnnouncementAsync(id, context.RequestAborted).ConfigureAwait(false) == ReplicaWrite.Unavailable)
            {
                return Unavailable("announcement's removal");
            }

            shared = true;
        }

        var frame = PushFrames.AnnouncementRemoved(id);
        var removed = board.Remove(id, () => PushDelivery.ToAll(sessions, frame));
        return removed || shared
            ? TypedResults.NoContent()
            : Error(StatusCodes.Status404NotFound, "unknown_announcement", $"no announcement '{Truncate(id)}' is in force");
    }

    /// <summary>The body is the topic's new value (any JSON), sent to its subscribers conflated: latest wins.</summary>
    private static async Task<IResult> SetTopicAsync(string name, HttpContext context, IOptions<PushOptions> options, TopicCache topics)
    {
        if (!IsPublisher(context, options.Value.PublisherKey))
        {
            return Unauthorized(context);
        }

        if (!topics.TryGet(name, out var id, out _))
        {
            return Error(StatusCodes.Status404NotFound, "unknown_topic",
                $"no topic '{Truncate(name)}'; topics are configured in Push:Topics ({(topics.Names.Count == 0 ? "none are" : string.Join(", ", topics.Names))})");
        }

        var (body, failure) = await ReadBodyAsync(context, options.Value.MaxBodyBytes).ConfigureAwait(false);
        if (failure is not null)
        {
            return failure;
        }

        string data;
        using (body)
        {
            data = body!.RootElement.GetRawText();
        }

        long seq;
        if (context.RequestServices.GetService<IPushReplica>() is { } replica)
        {
            // A NATS deployment: the bucket's revision is the value's seq on every daemon; applied here at once, and by
            // the others when their watch brings it.
            (var stored, seq) = await replica.SetTopicAsync(name, data, context.RequestAborted).ConfigureAwait(false);
            if (stored == ReplicaWrite.Unavailable)
            {
                return Unavailable("topic value");
            }

            topics.SetAt(id, data, seq);
        }
        else
        {
            seq = topics.Set(id, data);
        }

        return TypedResults.Json(new TopicResult(name, seq), DaemonJsonContext.Relaxed.TopicResult);
    }

    private static IResult Unauthorized(HttpContext context)
    {
        context.Response.Headers.WWWAuthenticate = "Bearer";
        return Error(StatusCodes.Status401Unauthorized, "unauthorized", "the publisher key is required: Authorization: Bearer <Push:PublisherKey>; user tokens cannot publish");
    }

    /// <summary>The bearer credential is the publisher key: compared in constant time, over hashes so length leaks nothing.</summary>
    private static bool IsPublisher(HttpContext context, string key)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var given = SHA256.HashData(Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim()));
        var expected = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        return CryptographicOperations.FixedTimeEquals(given, expected);
    }

    private static async Task<(JsonDocument? Body, IResult? Failure)> ReadBodyAsync(HttpContext context, int limit)
    {
        var request = context.Request;
        if (request.ContentType is not { } type || !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            return (null, Error(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type", "send the body as Content-Type: application/json"));
        }

        if (request.ContentLength > limit)
        {
            return (null, TooLarge(limit));
        }

        // Read up to one byte past the limit: a chunked body that does not say its length is refused all the same.
        var buffer = new byte[limit + 1];
        var count = 0;
        int read;
        while (count < buffer.Length && (read = await request.Body.ReadAsync(buffer.AsMemory(count), context.RequestAborted).ConfigureAwait(false)) > 0)
        {
            count += read;
        }

        if (count > limit)
        {
            return (null, TooLarge(limit));
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(buffer.AsMemory(0, count), new JsonDocumentOptions { MaxDepth = 32 });
        }
        catch (JsonException ex)
        {
            return (null, Invalid($"malformed JSON at byte {ex.BytePositionInLine}"));
        }

        // JSON allows an escaped lone surrogate ("\ud800"), which no .NET string can hold: reading it throws. Every
        // string is checked here, once, so no field read below can turn a bad body into a 500.
        if (!Decodes(document.RootElement))
        {
            document.Dispose();
            return (null, Invalid("a string holds an escaped lone surrogate (a \\uD800-\\uDFFF escape without its pair)"));
        }

        return (document, null);
    }

    private static bool Decodes(JsonElement element)
    {
        try
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.String:
                    _ = element.GetString();
                    return true;
                case JsonValueKind.Array:
                    return element.EnumerateArray().All(Decodes);
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        _ = property.Name;
                        if (!Decodes(property.Value))
                        {
                            return false;
                        }
                    }

                    return true;
                default:
                    return true;
            }
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static IResult TooLarge(int limit) =>
        Error(StatusCodes.Status413PayloadTooLarge, "body_too_large", $"publish bodies are limited to {limit} bytes (Push:MaxBodyBytes)");

    private static IResult Invalid(string message) => Error(StatusCodes.Status400BadRequest, "invalid_body", message);

    private static IResult Error(int status, string code, string message) =>
        TypedResults.Json(new ErrorBody(code, message), DaemonJsonContext.Relaxed.ErrorBody, statusCode: status);

    private static string Truncate(string value) => value.Length <= 64 ? value : string.Concat(value.AsSpan(0, 64), "...");
}
