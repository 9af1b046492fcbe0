using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Unicode;

namespace PriceDaemon.Sockets;

internal enum ClientAction
{
    Subscribe,
    Unsubscribe,

    /// <summary><c>{"action":"ack","ids":[...]}</c>: the client has the notifications with these ids.</summary>
    Ack,

    /// <summary><c>{"action":"subscribe","channel":"topic","topics":[...]}</c>.</summary>
    SubscribeTopics,

    /// <summary><c>{"action":"unsubscribe","channel":"topic","topics":[...]}</c>.</summary>
    UnsubscribeTopics,

    /// <summary><c>{"action":"subscribe","channel":"depth","instruments":[...]}</c>: the best 5 levels a side.</summary>
    SubscribeDepth,

    /// <summary><c>{"action":"unsubscribe","channel":"depth","instruments":[...]}</c>.</summary>
    UnsubscribeDepth,

    /// <summary><c>{"action":"subscribe","channel":"book","instruments":[...]}</c>: up to 30 levels a side.</summary>
    SubscribeBook,

    /// <summary><c>{"action":"unsubscribe","channel":"book","instruments":[...]}</c>.</summary>
    UnsubscribeBook,

    /// <summary><c>{"action":"subscribe","channel":"candles","interval":"1m","history":200,"instruments":[...]}</c>.</summary>
    SubscribeCandles,

    /// <summary><c>{"action":"unsubscribe","channel":"candles","interval":"1m","instruments":[...]}</c>.</summary>
    UnsubscribeCandles,

    /// <summary><c>{"action":"alert_create",...}</c>: its fields are read by <see cref="Alerts.AlertRequest"/>.</summary>
    AlertCreate,

    /// <summary><c>{"action":"subscribe","channel":"volume_alerts","instruments":[...]}</c>; no instruments (or <c>"*"</c>): all.</summary>
    SubscribeVolumeAlerts,

    /// <summary><c>{"action":"unsubscribe","channel":"volume_alerts",...}</c>; no instruments (or <c>"*"</c>): all.</summary>
    UnsubscribeVolumeAlerts,

    /// <summary><c>{"action":"alert_list"}</c>.</summary>
    AlertList,

    /// <summary><c>{"action":"alert_delete","id":"..."}</c>.</summary>
    AlertDelete,
}

/// <summary>What a candles message asks beyond its instruments: the interval (index in Candles.CandleIntervals) and how many closed bars.</summary>
internal readonly record struct CandleRequest(int Interval, int History);

/// <summary>Stable <c>error.code</c> strings; clients switch on them, so they never change.</summary>
internal static class ErrorCodes
{
    public const string InvalidMessage = "invalid_message";
    public const string UnknownAction = "unknown_action";
    public const string UnknownInstrument = "unknown_instrument";
    public const string SubscriptionLimit = "subscription_limit";
    public const string RateLimited = "rate_limited";
    public const string MessageTooLarge = "message_too_large";
    public const string NotificationsUnavailable = "notifications_unavailable";
    public const string UnknownChannel = "unknown_channel";
    public const string UnknownTopic = "unknown_topic";
    public const string TopicForbidden = "topic_forbidden";

    /// <summary>Also the <c>code</c> of the <c>warning</c> frame that comes first: the socket could not keep up.</summary>
    public const string SlowConsumer = "slow_consumer";
    public const string InvalidInterval = "invalid_interval";
    public const string InvalidHistory = "invalid_history";

    /// <summary>The user (or anonymous connection) already holds Alerts:MaxPerUser alerts.</summary>
    public const string AlertLimit = Alerts.AlertErrors.Limit;

    /// <summary>No alert of this user has that id.</summary>
    public const string UnknownAlert = "unknown_alert";

    /// <summary>Alerts are off (Alerts:Enabled=false), or the alert writer is too far behind to take one now.</summary>
    public const string AlertsUnavailable = "alerts_unavailable";
}

/// <summary>
/// Parses <c>{"action": "...", "instruments": [...]}</c> with a forward-only reader: unknown fields are
/// skipped, and every way a message can be wrong maps to one stable error code and a message a person can act on.
/// </summary>
internal static class ClientMessageParser
{
    public readonly record struct Error(string Code, string Message);

    private static readonly Error _unreadableText = new(
        ErrorCodes.InvalidMessage, "a string holds invalid UTF-8 or an escaped lone surrogate (a \\uD800-\\uDFFF escape without its pair)");

    private static readonly Error _badReq = new(
        ErrorCodes.InvalidMessage, $"'req' must be a string of at most {MaxReqLength} characters (the request id the answer echoes)");

    /// <summary>Most ids one ack may name: a user's inbox holds at most 200 (Push:InboxMaxPerUser).</summary>
    public const int MaxAckIds = 200;

    /// <summary>Longest <c>"req"</c>: a client's request id is a counter or a short uuid, echoed back as it came.</summary>
    public const int MaxReqLength = 64;

    /// <summary>Most closed bars a candles subscribe may ask for; <c>Candles:MaxHistory</c> may lower it.</summary>
    public const int MaxCandleHistory = 1000;

    /// <summary>
    /// Fills <paramref name="instruments"/> (cleared first) and returns null, or returns the error to send. For an ack
    /// the list holds the notification ids instead, for the topic channel the topic names: one list, so a price
    /// message allocates nothing more. A <c>channel</c> other than price, depth, book or topic is refused as unknown_channel.
    /// </summary>
    public static Error? Parse(ReadOnlySpan<byte> utf8, out ClientAction action, List<string> instruments) =>
        Parse(utf8, out action, instruments, out _);

    /// <param name="timing">A price subscribe's <c>"timing"</c> flag (frames carry the daemon's receive time); null when absent or not a price subscribe.</param>
    public static Error? Parse(ReadOnlySpan<byte> utf8, out ClientAction action, List<string> instruments, out bool? timing) =>
        Parse(utf8, out action, instruments, out timing, out _);

    /// <summary>As above; a candles message also fills <paramref name="candles"/>.</summary>
    public static Error? Parse(ReadOnlySpan<byte> utf8, out ClientAction action, List<string> instruments, out bool? timing, out CandleRequest candles) =>
        Parse(utf8, out action, instruments, out timing, out candles, out _);

    /// <summary>
    /// As above, with the client's request id: <paramref name="req"/> is the message's <c>"req"</c> string when it had one
    /// the reader reached (it may be set with an error), so the answer, or the error, can name the request it is about.
    /// On alert_* a <c>req</c> that is not a string of at most <see cref="MaxReqLength"/> characters is invalid_message;
    /// on other actions it is skipped, as every unknown field was before.
    /// </summary>
    public static Error? Parse(ReadOnlySpan<byte> utf8, out ClientAction action, List<string> instruments, out bool? timing, out CandleRequest candles, out string? req)
    {
        req = null;
        Error? reqProblem = null;
        candles = default;
        string? interval = null;
        var history = 0;
        action = default;
        timing = null;
        bool? timingField = null;
        instruments.Clear();
        string? actionName = null;
        var sawInstruments = false;
        List<string>? ids = null; // only an ack's: price subscribe messages allocate nothing more
        List<string>? topics = null;
        string? channel = null;
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = 8 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return new Error(ErrorCodes.InvalidMessage, "expected a JSON object like {\"action\":\"subscribe\",\"instruments\":[\"NSE_EQ|INE002A01018\"]}");
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                // A name that is not valid text could be either field (and ValueTextEquals throws on a bad escape).
                if (reader.ValueIsEscaped ? !TryGetString(ref reader, out _) : !Utf8.IsValid(reader.ValueSpan))
                {
                    return _unreadableText;
                }

                if (reader.ValueTextEquals("action"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        return new Error(ErrorCodes.InvalidMessage, "'action' must be a string");
                    }

                    if (!TryGetString(ref reader, out actionName))
                    {
                        return _unreadableText;
                    }
                }
                else if (reader.ValueTextEquals("instruments"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartArray)
                    {
                        return new Error(ErrorCodes.InvalidMessage, "'instruments' must be an array of instrument keys");
                    }

                    sawInstruments = true;
                    instruments.Clear();
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (reader.TokenType != JsonTokenType.String)
                        {
                            return new Error(ErrorCodes.InvalidMessage, "'instruments' must contain only strings");
                        }

                        if (!TryGetString(ref reader, out var key))
                        {
                            return _unreadableText;
                        }

                        instruments.Add(key);
                    }
                }
                else if (reader.ValueTextEquals("channel"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        return new Error(ErrorCodes.InvalidMessage, "'channel' must be a string (price, depth, book, candles, topic or volume_alerts)");
                    }

                    if (!TryGetString(ref reader, out channel))
                    {
                        return _unreadableText;
                    }
                }
                else if (reader.ValueTextEquals("topics"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartArray)
                    {
                        return new Error(ErrorCodes.InvalidMessage, "'topics' must be an array of topic names");
                    }

                    topics = [];
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (reader.TokenType != JsonTokenType.String)
                        {
                            return new Error(ErrorCodes.InvalidMessage, "'topics' must contain only strings");
                        }

                        if (!TryGetString(ref reader, out var topic))
                        {
                            return _unreadableText;
                        }

                        topics.Add(topic);
                    }
                }
                else if (reader.ValueTextEquals("timing"u8))
                {
                    reader.Read();
                    if (reader.TokenType is not (JsonTokenType.True or JsonTokenType.False))
                    {
                        return new Error(ErrorCodes.InvalidMessage, "'timing' must be true or false");
                    }

                    timingField = reader.TokenType == JsonTokenType.True;
                }
                else if (reader.ValueTextEquals("interval"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        return new Error(ErrorCodes.InvalidInterval, $"'interval' must be a string: one of {Candles.CandleIntervals.List}");
                    }

                    if (!TryGetString(ref reader, out interval))
                    {
                        return _unreadableText;
                    }
                }
                else if (reader.ValueTextEquals("history"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out history) || history is < 0 or > MaxCandleHistory)
                    {
                        return new Error(ErrorCodes.InvalidHistory, $"'history' must be a whole number of closed bars from 0 to {MaxCandleHistory}");
                    }
                }
                else if (reader.ValueTextEquals("req"u8))
                {
                    // Read whatever the action (it may come first), judged only for alert_* below; the last one counts.
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String && TryGetString(ref reader, out var value) && value.Length <= MaxReqLength)
                    {
                        req = value;
                        reqProblem = null;
                    }
                    else
                    {
                        req = null;
                        reqProblem = _badReq;
                        reader.Skip();
                    }
                }
                else if (reader.ValueTextEquals("ids"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartArray)
                    {
                        return new Error(ErrorCodes.InvalidMessage, "'ids' must be an array of notification ids");
                    }

                    ids = [];
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (reader.TokenType != JsonTokenType.String)
                        {
                            return new Error(ErrorCodes.InvalidMessage, "'ids' must contain only strings");
                        }

                        if (!TryGetString(ref reader, out var id))
                        {
                            return _unreadableText;
                        }

                        if (ids.Count == MaxAckIds)
                        {
                            return new Error(ErrorCodes.InvalidMessage, $"an ack names at most {MaxAckIds} ids");
                        }

                        ids.Add(id);
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                return new Error(ErrorCodes.InvalidMessage, "expected exactly one JSON object");
            }
        }
        catch (JsonException ex)
        {
            return new Error(ErrorCodes.InvalidMessage, $"malformed JSON at byte {ex.BytePositionInLine}");
        }

        switch (actionName)
        {
            case null:
                return new Error(ErrorCodes.InvalidMessage, "missing 'action' (subscribe, unsubscribe or ack)");
            case "ack":
                action = ClientAction.Ack;
                instruments.Clear();
                if (ids is null)
                {
                    return new Error(ErrorCodes.InvalidMessage, "missing 'ids' (an array of notification ids)");
                }

                instruments.AddRange(ids);
                return null;
            case "alert_create" or "alert_list" or "alert_delete":
                // The alert's own fields are read by Alerts.AlertRequest from the same bytes: the price path reads none of them.
                action = actionName switch
                {
                    "alert_create" => ClientAction.AlertCreate,
                    "alert_list" => ClientAction.AlertList,
                    _ => ClientAction.AlertDelete,
                };
                instruments.Clear();
                return reqProblem;
            case "subscribe" or "unsubscribe" when channel == "volume_alerts":
                // Without instruments (or with "*"): every instrument.
                action = actionName == "subscribe" ? ClientAction.SubscribeVolumeAlerts : ClientAction.UnsubscribeVolumeAlerts;
                return null;
            case "subscribe" or "unsubscribe" when channel == "topic":
                action = actionName == "subscribe" ? ClientAction.SubscribeTopics : ClientAction.UnsubscribeTopics;
                instruments.Clear();
                if (topics is null)
                {
                    return new Error(ErrorCodes.InvalidMessage, "missing 'topics' (an array of topic names)");
                }

                instruments.AddRange(topics);
                return null;
            case "subscribe" or "unsubscribe" when channel is "depth" or "book":
                action = (actionName, channel) switch
                {
                    ("subscribe", "depth") => ClientAction.SubscribeDepth,
                    ("unsubscribe", "depth") => ClientAction.UnsubscribeDepth,
                    ("subscribe", _) => ClientAction.SubscribeBook,
                    _ => ClientAction.UnsubscribeBook,
                };
                break;
            case "subscribe" or "unsubscribe" when channel == "candles":
                action = actionName == "subscribe" ? ClientAction.SubscribeCandles : ClientAction.UnsubscribeCandles;
                if (!Candles.CandleIntervals.TryParse(interval, out var index))
                {
                    return new Error(ErrorCodes.InvalidInterval, interval is null
                        ? $"missing 'interval' (one of {Candles.CandleIntervals.List})"
                        : $"unknown interval '{Truncate(interval)}'; expected one of {Candles.CandleIntervals.List}");
                }

                candles = new CandleRequest(index, history);
                break;
            case "subscribe" or "unsubscribe" when channel is not (null or "price"):
                return new Error(ErrorCodes.UnknownChannel, $"unknown channel '{Truncate(channel)}'; expected price, depth, book, candles, topic or volume_alerts");
            case "subscribe":
                action = ClientAction.Subscribe;
                timing = timingField;
                break;
            case "unsubscribe":
                action = ClientAction.Unsubscribe;
                break;
            default:
                return new Error(ErrorCodes.UnknownAction, $"unknown action '{Truncate(actionName)}'; expected subscribe, unsubscribe or ack");
        }

        return sawInstruments ? null : new Error(ErrorCodes.InvalidMessage, "missing 'instruments' (an array of instrument keys)");
    }

    /// <summary>
    /// The reader checks a string's syntax but decodes it only here: <c>GetString</c> throws
    /// <see cref="InvalidOperationException"/> for invalid UTF-8 or an escaped lone surrogate, which any client can send.
    /// </summary>
    private static bool TryGetString(ref Utf8JsonReader reader, [NotNullWhen(true)] out string? value)
    {
        try
        {
            value = reader.GetString()!;
            return true;
        }
        catch (InvalidOperationException)
        {
            value = null;
            return false;
        }
    }

    private static string Truncate(string value) => value.Length <= 64 ? value : string.Concat(value.AsSpan(0, 64), "...");
}
