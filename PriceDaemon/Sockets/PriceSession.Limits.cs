using System.Buffers;
using System.Net.WebSockets;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace PriceDaemon.Sockets;

/// <summary>The per-connection rules of the security section: idle timeout, bad-message budget, token expiry.</summary>
internal sealed partial class PriceSession
{
    private static readonly JsonWriterOptions _relaxedJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>True when no client message has arrived for more than <paramref name="limit"/> timestamp ticks.</summary>
    public bool IsIdle(long now, long limit) => now - Volatile.Read(ref _lastMessageAt) > limit;

    private void MessageReceived() => Volatile.Write(ref _lastMessageAt, _services.Time.GetTimestamp());

    /// <summary>Closes the socket the moment the token stops being valid; null for anonymous clients.</summary>
    private ITimer? StartExpiryTimer()
    {
        if (_client.ExpiresAt is not { } expiresAt)
        {
            return null;
        }

        var due = expiresAt - _services.Time.GetUtcNow();
        return _services.Time.CreateTimer(
            static s =>
            {
                var session = (PriceSession)s!;
                session.LogTokenExpired(session.Id, session.Remote);
                session.BeginClose(WebSocketCloseStatus.PolicyViolation, "token expired");
            },
            this,
            due > TimeSpan.Zero ? due : TimeSpan.Zero,
            Timeout.InfiniteTimeSpan);
    }

    /// <summary>Counts a bad message; true when this one is over the budget and the connection must close.</summary>
    private bool OverBadMessageBudget()
    {
        var limit = _services.Limits.MaxBadMessagesPerMinute;
        if (limit == 0)
        {
            return false;
        }

        var now = _services.Time.GetTimestamp();
        if (_badMessages == 0 || _services.Time.GetElapsedTime(_badWindowStart, now) >= TimeSpan.FromMinutes(1))
        {
            _badWindowStart = now;
            _badMessages = 0;
        }

        return ++_badMessages > limit;
    }

    /// <summary>Counts an ack; true, with when the window ends, when this one is over <see cref="LimitsOptions.MaxAcksPerMinute"/>.</summary>
    private bool OverAckBudget(out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        var limit = _services.Limits.MaxAcksPerMinute;
        if (limit == 0)
        {
            return false;
        }

        var now = _services.Time.GetTimestamp();
        var elapsed = _services.Time.GetElapsedTime(_ackWindowStart, now);
        if (_acks == 0 || elapsed >= TimeSpan.FromMinutes(1))
        {
            _ackWindowStart = now;
            _acks = 0;
            elapsed = TimeSpan.Zero;
        }

        retryAfter = TimeSpan.FromMinutes(1) - elapsed;
        return ++_acks > limit;
    }

    private static byte[] RateLimitedFrame(TimeSpan retryAfter, string? message = null)
    {
        var buffer = new ArrayBufferWriter<byte>(160);
        using (var w = new Utf8JsonWriter(buffer, _relaxedJson))
        {
            w.WriteStartObject();
            w.WriteString("type", "error");
            w.WriteString("code", ErrorCodes.RateLimited);
            w.WriteString("message", message ?? "too many subscription changes; nothing was changed, send it again after retry_after_ms");
            w.WriteNumber("retry_after_ms", (long)Math.Ceiling(retryAfter.TotalMilliseconds));
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
