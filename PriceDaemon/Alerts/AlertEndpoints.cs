using PriceDaemon.Instruments;
using PriceDaemon.Security;
using PriceDaemon.Sockets;

namespace PriceDaemon.Alerts;

/// <summary>
/// <c>GET /api/alerts</c>, <c>POST /api/alerts</c>, <c>DELETE /api/alerts/{id}</c>: a user's alerts over HTTP, with
/// the user's own token (as for the socket: <c>Authorization: Bearer</c> or <c>?token=</c>). The same alerts as the
/// socket's actions, in the same JSON; a user sees and deletes only their own.
/// </summary>
internal static class AlertEndpoints
{
    private const int MaxBodyBytes = 4096;

    public static IEndpointRouteBuilder MapAlertEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/alerts", ListAsync);
        app.MapPost("/api/alerts", CreateAsync);
        app.MapDelete("/api/alerts/{id}", DeleteAsync);
        return app;
    }

    private static async Task<IResult> ListAsync(HttpContext context, ClientAuthenticator authenticator, AlertBook book)
    {
        var (user, failure) = await UserAsync(context, authenticator).ConfigureAwait(false);
        return failure ?? NotLoaded(book) ?? Json(StatusCodes.Status200OK, AlertFrames.List(book.List(user!)));
    }

    private static async Task<IResult> CreateAsync(HttpContext context, ClientAuthenticator authenticator, AlertBook book, InstrumentRegistry instruments, TimeProvider time)
    {
        var (user, failure) = await UserAsync(context, authenticator).ConfigureAwait(false);
        if ((failure ?? NotLoaded(book)) is { } refused)
        {
            return refused;
        }

        if (!book.TryChange(user!, out var retryAfter))
        {
            return RateLimited(book, retryAfter);
        }

        if (context.Request.ContentType is not { } type || !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            return Error(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type", "send the body as Content-Type: application/json");
        }

        var buffer = new byte[MaxBodyBytes + 1];
        var count = 0;
        int read;
        while (count < buffer.Length && (read = await context.Request.Body.ReadAsync(buffer.AsMemory(count), context.RequestAborted).ConfigureAwait(false)) > 0)
        {
            count += read;
        }

        if (count > MaxBodyBytes)
        {
            return Error(StatusCodes.Status413PayloadTooLarge, "body_too_large", $"alert bodies are limited to {MaxBodyBytes} bytes");
        }

        if (AlertRequest.Parse(buffer.AsSpan(0, count), create: true, book.Options.MaxNoteLength, out var problem) is not { } request)
        {
            return Error(StatusCodes.Status400BadRequest, "invalid_body", problem);
        }

        if (!instruments.TryGet(request.InstrumentKey!, out var instrument))
        {
            return Error(StatusCodes.Status400BadRequest, ErrorCodes.UnknownInstrument, $"no instrument '{request.InstrumentKey}'; GET /api/instruments lists them");
        }

        var alert = new Alert(PriceSession.NewAlertId(), user!, ownedByConnection: false, instrument.Id, instrument.Key, request.Condition,
            request.Value, request.Repeat, request.Note, time.GetUtcNow());
        switch (book.TryAdd(alert, out var stored))
        {
            case AlertErrors.Limit:
                return Error(StatusCodes.Status409Conflict, ErrorCodes.AlertLimit, $"at most {book.MaxPerOwner} alerts per user; delete one first (Alerts:MaxPerUser)");
            case not null:
                return Error(StatusCodes.Status503ServiceUnavailable, ErrorCodes.AlertsUnavailable, "alerts are busy; try again in a moment");
        }

        return await stored.ConfigureAwait(false) is null
            ? Json(StatusCodes.Status201Created, AlertFrames.Body(book.Current(alert)))
            : Unavailable();
    }

    private static async Task<IResult> DeleteAsync(string id, HttpContext context, ClientAuthenticator authenticator, AlertBook book)
    {
        var (user, failure) = await UserAsync(context, authenticator).ConfigureAwait(false);
        if ((failure ?? NotLoaded(book)) is { } refused)
        {
            return refused;
        }

        if (!book.TryChange(user!, out var retryAfter))
        {
            return RateLimited(book, retryAfter);
        }

        if (!book.TryDelete(user!, id, out var stored))
        {
            return Error(StatusCodes.Status404NotFound, ErrorCodes.UnknownAlert, "no alert with that id is yours");
        }

        return await stored.ConfigureAwait(false) is null ? Json(StatusCodes.Status200OK, AlertFrames.Deleted(id)) : Unavailable();
    }

    /// <summary>The token's <c>sub</c>; alerts over HTTP need a user, so <c>Auth:Mode=None</c> answers 409.</summary>
    private static async Task<(string? User, IResult? Failure)> UserAsync(HttpContext context, ClientAuthenticator authenticator)
    {
        if (authenticator.Mode != AuthMode.Jwt)
        {
            return (null, Error(StatusCodes.Status409Conflict, "no_users",
                "alerts over HTTP belong to a user and need Auth:Mode=Jwt; with Auth:Mode=None set them on the socket (they belong to the connection)"));
        }

        var (result, reason) = await authenticator.AuthenticateAsync(context).ConfigureAwait(false);
        if (result?.Subject is not { } subject)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            return (null, Error(StatusCodes.Status401Unauthorized, "unauthorized", reason));
        }

        return (subject, null);
    }

    private static IResult RateLimited(AlertBook book, TimeSpan retryAfter) => Json(StatusCodes.Status429TooManyRequests, ControlFrames.Write(w =>
    {
        w.WriteString("code", ErrorCodes.RateLimited);
        w.WriteString("message", $"at most {book.Options.ChangesPerMinute} alert creates and deletes a minute (Alerts:ChangesPerMinute)");
        w.WriteNumber("retry_after_ms", (long)Math.Ceiling(retryAfter.TotalMilliseconds));
    }));

    /// <summary>
    /// A NATS deployment whose NATS did not confirm the change in time: it may still have been stored (a timeout after
    /// NATS took it), so the client lists before it tries again.
    /// </summary>
    private static IResult Unavailable() => Error(StatusCodes.Status503ServiceUnavailable, ErrorCodes.AlertsUnavailable, AlertFrames.UnconfirmedMessage);

    /// <summary>A NATS deployment before the alerts bucket is loaded here: 503, not an empty list or an unenforced limit.</summary>
    private static IResult? NotLoaded(AlertBook book) => book.Ready
        ? null
        : Error(StatusCodes.Status503ServiceUnavailable, ErrorCodes.AlertsUnavailable, AlertFrames.NotLoadedMessage);

    private static IResult Json(int status, byte[] body) =>
        Results.Text(System.Text.Encoding.UTF8.GetString(body), "application/json", System.Text.Encoding.UTF8, status);

    private static IResult Error(int status, string code, string message) =>
        Json(status, ControlFrames.Write(w =>
        {
            w.WriteString("code", code);
            w.WriteString("message", message);
        }));
}
