using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using PriceDaemon.Push;
using PriceDaemon.Sockets;

namespace PriceDaemon.Nats;

/// <summary>
/// Keys and values of the push buckets. Keys are <see cref="NatsSubjects.Escape"/>d so that any user, id or topic is
/// a valid key: the inbox's <c>&lt;user&gt;.&lt;id&gt;</c> (one user's notifications under one prefix, readable with
/// <c>nats kv ls</c>), announcements and topics by their id or name. Values are small JSON objects; a notification's
/// <c>data</c> is the publisher's JSON as sent.
/// </summary>
internal static class PushCodec
{
    // A user (256 characters) and an id (128), escaped, can pass what a NATS subject line holds (4 KiB); such a part is
    // named by its hash instead. Values carry the user and the id, so nothing is read back from a key.
    private const int MaxTokenLength = 200;

    public static string NotificationKey(string user, string id) => UserKey(user, id);

    /// <summary><c>&lt;user&gt;.&lt;id&gt;</c>: one of a user's things (a notification, an alert), under the user's prefix.</summary>
    public static string UserKey(string user, string id) => $"{Token(user)}.{Token(id)}";

    public static string Key(string name) => NatsSubjects.Escape(name);

    public static string Name(string key) => NatsSubjects.Unescape(key);

    private static string Token(string part)
    {
        var escaped = NatsSubjects.Escape(part);
        return escaped.Length <= MaxTokenLength
            ? escaped
            : "_h" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(part)));
    }

    /// <summary><c>{"u":user,"i":id,"k":kind,"c":created ms,"a":acked,"d":data}</c>.</summary>
    public static byte[] Notification(InboxEntry entry) => ControlFrames.Write(w =>
    {
        w.WriteString("u", entry.User);
        w.WriteString("i", entry.Id);
        w.WriteString("k", entry.Kind);
        w.WriteNumber("c", entry.CreatedAt.ToUnixTimeMilliseconds());
        w.WriteBoolean("a", entry.Acked);
        w.WritePropertyName("d");
        w.WriteRawValue(entry.Data, skipInputValidation: true);
    });

    public static InboxEntry? ReadNotification(ReadOnlyMemory<byte> value)
    {
        try
        {
            using var document = JsonDocument.Parse(value);
            var root = document.RootElement;
            var entry = new InboxEntry(
                root.GetProperty("u").GetString()!,
                root.GetProperty("i").GetString()!,
                root.GetProperty("k").GetString()!,
                DateTimeOffset.FromUnixTimeMilliseconds(root.GetProperty("c").GetInt64()),
                root.GetProperty("d").GetRawText());
            return root.GetProperty("a").GetBoolean() ? entry.MarkAcked() : entry;
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary><c>{"level":..,"message":..,"expires_at":ms}</c>; the id is the key.</summary>
    public static byte[] Announcement(Announcement announcement) => ControlFrames.Write(w =>
    {
        w.WriteString("level", announcement.Level);
        w.WriteString("message", announcement.Message);
        w.WriteNumber("expires_at", announcement.ExpiresAt.ToUnixTimeMilliseconds());
    });

    public static (string Level, string Message, DateTimeOffset ExpiresAt)? ReadAnnouncement(ReadOnlyMemory<byte> value)
    {
        try
        {
            using var document = JsonDocument.Parse(value);
            var root = document.RootElement;
            var level = root.GetProperty("level").GetString()!;
            return AnnouncementBoard.Levels.Contains(level)
                ? (level, root.GetProperty("message").GetString()!, DateTimeOffset.FromUnixTimeMilliseconds(root.GetProperty("expires_at").GetInt64()))
                : null;
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>A topic's value is its JSON as the backend sent it; null when it is not JSON.</summary>
    public static string? ReadTopic(ReadOnlyMemory<byte> value)
    {
        try
        {
            using var document = JsonDocument.Parse(value);
            return document.RootElement.GetRawText();
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
