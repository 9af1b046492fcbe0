using System.Text.Json;
using PriceDaemon.Alerts;
using PriceDaemon.Instruments;
using PriceDaemon.Sockets;

namespace PriceDaemon.Nats;

/// <summary>
/// Keys and values of the alerts bucket: <c>&lt;user&gt;.&lt;alert id&gt;</c>, escaped as the inbox's keys are, and a small
/// JSON object holding what the user set and the alert's state (the fields of the single daemon's <c>alerts.db</c>).
/// </summary>
internal static class AlertCodec
{
    public static string Key(Alert alert) => PushCodec.UserKey(alert.Owner, alert.Id);

    /// <summary>The alert id in a key (ids are made of characters that pass escaping unchanged).</summary>
    public static string IdOf(string key) => PushCodec.Name(key[(key.LastIndexOf('.') + 1)..]);

    /// <summary>
    /// <c>{"i","o","k","c","v","r","n","ca","s","fa","fp","fc","nf"}</c>; <c>nf</c> is how many fires are known notified
    /// (<see cref="Alert.Notified"/>).
    /// </summary>
    public static byte[] Write(AlertSnapshot s, int notified = 0) => ControlFrames.Write(w =>
    {
        w.WriteString("i", s.Alert.Id);
        w.WriteString("o", s.Alert.Owner);
        w.WriteString("k", s.Alert.InstrumentKey);
        w.WriteString("c", AlertConditions.Name(s.Alert.Condition));
        w.WriteNumber("v", s.Alert.Value);
        w.WriteBoolean("r", s.Alert.Repeat);
        w.WriteString("n", s.Alert.Note);
        w.WriteNumber("ca", s.Alert.CreatedAt.ToUnixTimeMilliseconds());
        w.WriteNumber("s", (int)s.State);
        w.WriteNumber("fa", s.FiredAtUs);
        w.WriteNumber("fp", s.FiredPrice);
        w.WriteNumber("fc", s.FireCount);
        w.WriteNumber("nf", notified);
    });

    /// <summary>The alert a value holds; null when it is not one, or its instrument or condition is unknown here.</summary>
    public static Alert? Read(ReadOnlyMemory<byte> value, InstrumentRegistry instruments)
    {
        try
        {
            using var document = JsonDocument.Parse(value);
            var root = document.RootElement;
            var key = root.GetProperty("k").GetString()!;
            var state = root.GetProperty("s").GetInt32();
            if (!instruments.TryGet(key, out var instrument) || !AlertConditions.TryParse(root.GetProperty("c").GetString()!, out var condition)
                || state is < (int)AlertState.Armed or > (int)AlertState.Fired)
            {
                return null;
            }

            return new Alert(root.GetProperty("i").GetString()!, root.GetProperty("o").GetString()!, ownedByConnection: false, instrument.Id, key,
                condition, root.GetProperty("v").GetDouble(), root.GetProperty("r").GetBoolean(), root.GetProperty("n").GetString()!,
                DateTimeOffset.FromUnixTimeMilliseconds(root.GetProperty("ca").GetInt64()))
            {
                State = (AlertState)state,
                FiredAtUs = root.GetProperty("fa").GetInt64(),
                FiredPrice = root.GetProperty("fp").GetDouble(),
                FireCount = root.GetProperty("fc").GetInt32(),
                // A value written before nf existed counts as notified: its evaluator notified before writing the next state.
                Notified = root.TryGetProperty("nf", out var notified) ? notified.GetInt32() : root.GetProperty("fc").GetInt32(),
            };
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or ArgumentException or FormatException)
        {
            return null;
        }
    }
}
