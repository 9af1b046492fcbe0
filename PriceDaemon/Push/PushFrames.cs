using System.Globalization;
using PriceDaemon.Sockets;

namespace PriceDaemon.Push;

/// <summary>The frames of user events: a notification, and the answer to an ack.</summary>
internal static class PushFrames
{
    public static string Timestamp(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary><c>{"type":"notification","id":..,"kind":..,"created_at":..,"data":{..}}</c>, with <c>"replayed":true</c> on a replay.</summary>
    public static byte[] Notification(InboxEntry entry, bool replayed) => ControlFrames.Write(w =>
    {
        w.WriteString("type", "notification");
        w.WriteString("id", entry.Id);
        w.WriteString("kind", entry.Kind);
        w.WriteString("created_at", Timestamp(entry.CreatedAt));
        w.WritePropertyName("data");
        w.WriteRawValue(entry.Data, skipInputValidation: true);
        if (replayed)
        {
            w.WriteBoolean("replayed", true);
        }
    });

    /// <summary><c>{"type":"acked","ids":[..]}</c>: the ids this ack removed from the user's inbox.</summary>
    public static byte[] Acked(IReadOnlyList<string> ids) => ControlFrames.Write(w =>
    {
        w.WriteString("type", "acked");
        w.WriteStartArray("ids");
        foreach (var id in ids)
        {
            w.WriteStringValue(id);
        }

        w.WriteEndArray();
    });

    /// <summary><c>{"type":"announcement","id":..,"level":..,"message":..,"expires_at":..}</c>.</summary>
    public static byte[] Announcement(string id, string level, string message, DateTimeOffset expiresAt) => ControlFrames.Write(w =>
    {
        w.WriteString("type", "announcement");
        w.WriteString("id", id);
        w.WriteString("level", level);
        w.WriteString("message", message);
        w.WriteString("expires_at", Timestamp(expiresAt));
    });

    /// <summary><c>{"type":"announcement_removed","id":..}</c>: the backend deleted it before it expired; clients hide it.</summary>
    public static byte[] AnnouncementRemoved(string id) => ControlFrames.Write(w =>
    {
        w.WriteString("type", "announcement_removed");
        w.WriteString("id", id);
    });

    /// <summary><c>{"type":"topic","topic":..,"seq":..,"data":..}</c>: one value of a topic.</summary>
    public static byte[] Topic(string topic, long seq, string data) => ControlFrames.Write(w =>
    {
        w.WriteString("type", "topic");
        w.WriteString("topic", topic);
        w.WriteNumber("seq", seq);
        w.WritePropertyName("data");
        w.WriteRawValue(data, skipInputValidation: true);
    });

    /// <summary>The answer to a topic subscribe or unsubscribe: the topics held now, and those refused with why.</summary>
    public static byte[] TopicsSubscribed(string action, IReadOnlyList<string> topics, IReadOnlyList<(string Topic, string Code)> rejected) =>
        ControlFrames.Ack(action, "topic", "topics", topics, "topic", rejected);
}
