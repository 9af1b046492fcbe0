using System.Text.Json;

namespace PriceDaemon.Alerts;

/// <summary>
/// The fields of <c>alert_create</c> (on the socket) and of a <c>POST /api/alerts</c> body, read the same way:
/// <c>{"instrument_key":"NSE_EQ|INE002A01018","condition":"above","price":2500,"repeat":false,"note":"..."}</c>, with
/// <c>percent</c> instead of <c>price</c> for the change conditions; <c>alert_delete</c> reads <c>id</c>. Other fields
/// (the socket's <c>action</c>) are skipped.
/// </summary>
internal sealed record AlertRequest(string? InstrumentKey, AlertCondition Condition, double Value, bool Repeat, string Note, string? Id)
{
    public const int MaxIdLength = 64;

    /// <summary>Reads a create (<paramref name="create"/>) or a delete; null and a message a person can act on when it is wrong.</summary>
    public static AlertRequest? Parse(ReadOnlySpan<byte> utf8, bool create, int maxNote, out string error)
    {
        error = "";
        string? key = null, condition = null, note = null, id = null;
        double? price = null, percent = null;
        var repeat = false;
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = 8 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                error = "expected a JSON object";
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString();
                reader.Read();
                switch (name)
                {
                    case "instrument_key":
                        key = String(ref reader, name, ref error);
                        break;
                    case "condition":
                        condition = String(ref reader, name, ref error);
                        break;
                    case "note":
                        note = String(ref reader, name, ref error);
                        break;
                    case "id":
                        id = String(ref reader, name, ref error);
                        break;
                    case "price":
                        price = Number(ref reader, name, ref error);
                        break;
                    case "percent":
                        percent = Number(ref reader, name, ref error);
                        break;
                    case "repeat":
                        if (reader.TokenType is not (JsonTokenType.True or JsonTokenType.False))
                        {
                            error = "'repeat' must be true or false";
                        }
                        else
                        {
                            repeat = reader.GetBoolean();
                        }

                        break;
                    default:
                        reader.Skip();
                        break;
                }

                if (error.Length > 0)
                {
                    return null;
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            error = "malformed JSON";
            return null;
        }

        if (!create)
        {
            if (id is not { Length: > 0 and <= MaxIdLength })
            {
                error = "missing 'id' (the alert's id, from alert_created or alert_list)";
                return null;
            }

            return new AlertRequest(null, default, 0, false, "", id);
        }

        if (string.IsNullOrEmpty(key))
        {
            error = "missing 'instrument_key'";
            return null;
        }

        if (condition is null || !AlertConditions.TryParse(condition, out var parsed))
        {
            error = $"'condition' must be one of {string.Join(", ", AlertConditions.Names)}";
            return null;
        }

        double value;
        if (AlertConditions.IsPercent(parsed))
        {
            if (percent is not { } p || p is <= -100 or > 1000)
            {
                error = $"'{condition}' needs 'percent': the day change in percent, above -100 (e.g. 2.5 or -3)";
                return null;
            }

            value = p;
        }
        else
        {
            if (price is not { } p || p <= 0)
            {
                error = $"'{condition}' needs 'price': a positive number";
                return null;
            }

            value = p;
        }

        note ??= "";
        if (note.Length > maxNote)
        {
            error = $"'note' is limited to {maxNote} characters";
            return null;
        }

        return new AlertRequest(key, parsed, value, repeat, note, null);
    }

    private static string? String(ref Utf8JsonReader reader, string name, ref string error)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            error = $"'{name}' must be a string";
            reader.Skip();
            return null;
        }

        return reader.GetString();
    }

    private static double? Number(ref Utf8JsonReader reader, string name, ref string error)
    {
        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetDouble(out var value) || !double.IsFinite(value))
        {
            error = $"'{name}' must be a number";
            reader.Skip();
            return null;
        }

        return value;
    }
}
