using System.Text.Json;
using PriceDaemon.Push;
using PriceDaemon.Sockets;

namespace PriceDaemon.Alerts;

/// <summary>The alert frames and bodies: one JSON shape of an alert, on the socket and over HTTP.</summary>
internal static class AlertFrames
{
    /// <summary>
    /// <c>alerts_unavailable</c> when NATS did not confirm a create or delete in time: a timeout can come after NATS
    /// stored it, so it may have been; <c>alert_list</c> tells before trying again.
    /// </summary>
    public const string UnconfirmedMessage =
        "NATS did not confirm the change within Nats:PushTimeoutMs: it may not have been stored (or may have been); list the alerts, then try again";

    /// <summary><c>alerts_unavailable</c> before this daemon has loaded the alerts bucket from NATS.</summary>
    public const string NotLoadedMessage = "this daemon has not loaded the alerts from NATS yet; try again in a moment";

    /// <summary><c>{"type":"alert_created","alert":{..}}</c>: the answer to <c>alert_create</c>, once the alert is stored.</summary>
    public static byte[] Created(AlertSnapshot alert) => ControlFrames.Write(w =>
    {
        w.WriteString("type", "alert_created");
        w.WritePropertyName("alert");
        WriteAlert(w, alert);
    });

    /// <summary><c>{"type":"alerts","alerts":[..]}</c>: the answer to <c>alert_list</c> (the HTTP list is the same object).</summary>
    public static byte[] List(IEnumerable<AlertSnapshot> alerts) => ControlFrames.Write(w =>
    {
        w.WriteString("type", "alerts");
        w.WriteStartArray("alerts");
        foreach (var alert in alerts)
        {
            WriteAlert(w, alert);
        }

        w.WriteEndArray();
    });

    /// <summary><c>{"type":"alert_deleted","id":..}</c>.</summary>
    public static byte[] Deleted(string id) => ControlFrames.Write(w =>
    {
        w.WriteString("type", "alert_deleted");
        w.WriteString("id", id);
    });

    /// <summary>The alert alone, for <c>POST /api/alerts</c>'s answer.</summary>
    public static byte[] Body(AlertSnapshot alert) => ControlFrames.Write(w => WriteFields(w, alert));

    /// <summary>The <c>data</c> of the <c>price_alert</c> notification a fire sends.</summary>
    public static string NotificationData(AlertSnapshot fired, string symbol) => System.Text.Encoding.UTF8.GetString(ControlFrames.Write(w =>
    {
        var alert = fired.Alert;
        w.WriteString("alert_id", alert.Id);
        w.WriteString("instrument_key", alert.InstrumentKey);
        w.WriteString("symbol", symbol);
        w.WriteString("condition", AlertConditions.Name(alert.Condition));
        WriteValue(w, alert);
        w.WriteNumber("last_price", fired.FiredPrice);
        w.WriteString("fired_at", PushFrames.Timestamp(DateTimeOffset.FromUnixTimeMilliseconds(fired.FiredAtUs / 1000)));
        w.WriteBoolean("repeat", alert.Repeat);
        w.WriteNumber("fire_count", fired.FireCount);
        w.WriteString("note", alert.Note);
    }));

    /// <summary>The notification's id: the alert's and the fire's number, so a fire replayed after a crash is deduped.</summary>
    public static string NotificationId(AlertSnapshot fired) => $"{fired.Alert.Id}-{fired.FireCount}";

    public const string NotificationKind = "price_alert";

    private static void WriteAlert(Utf8JsonWriter w, AlertSnapshot alert)
    {
        w.WriteStartObject();
        WriteFields(w, alert);
        w.WriteEndObject();
    }

    private static void WriteFields(Utf8JsonWriter w, AlertSnapshot snapshot)
    {
        var alert = snapshot.Alert;
        w.WriteString("id", alert.Id);
        w.WriteString("instrument_key", alert.InstrumentKey);
        w.WriteString("condition", AlertConditions.Name(alert.Condition));
        WriteValue(w, alert);
        w.WriteBoolean("repeat", alert.Repeat);
        w.WriteString("note", alert.Note);
        w.WriteString("owner", alert.OwnedByConnection ? "connection" : "user");
        w.WriteString("state", snapshot.State switch
        {
            AlertState.Armed => "armed",
            AlertState.Resetting => "resetting",
            _ => "fired",
        });
        w.WriteString("created_at", PushFrames.Timestamp(alert.CreatedAt));
        w.WriteNumber("fire_count", snapshot.FireCount);
        if (snapshot.FireCount > 0)
        {
            w.WriteString("fired_at", PushFrames.Timestamp(DateTimeOffset.FromUnixTimeMilliseconds(snapshot.FiredAtUs / 1000)));
            w.WriteNumber("fired_price", snapshot.FiredPrice);
        }
        else
        {
            w.WriteNull("fired_at");
            w.WriteNull("fired_price");
        }
    }

    private static void WriteValue(Utf8JsonWriter w, Alert alert) =>
        w.WriteNumber(AlertConditions.IsPercent(alert.Condition) ? "percent" : "price", alert.Value);
}
