using System.Text;
using System.Text.Json;
using PriceDaemon.Sockets;

namespace PriceDaemon.Tests.Sockets;

/// <summary>
/// The parser against every shape of wrong input that can be generated in a few seconds: each must end in a parsed
/// action or an error with a stable code, never an exception, and must agree with a reading of the same bytes by
/// <see cref="JsonDocument"/> under the rules of DESIGN.md. Seeds are fixed, so a failure names an input that reproduces.
/// </summary>
public sealed class ClientMessageParserFuzzTests
{
    private const int Seeds = 100;
    private const int MutationsPerSeed = 200;

    private static readonly string[] Valid =
    [
        """{"action":"subscribe","instruments":["NSE_EQ|INE002A01018","NSE_EQ|INE467B01029"]}""",
        """{"action":"unsubscribe","instruments":["NSE_EQ|INE002A01018"]}""",
        """{"instruments":[],"action":"subscribe"}""",
        """ { "x" : { "y" : [ null , true , 1.5e3 ] } , "action" : "subscribe" , "instruments" : [ "A|1" ] } """,
        """{"action":"subscribe","instruments":["\u00e9\n\"\\\/\b\f\r\t","\ud83d\ude00"]}""",
        """{"action":"ack","ids":["trade-8812","n-1"]}""",
        """{"ids":[],"action":"ack","instruments":["A|1"]}""",
        """{"action":"subscribe","channel":"topic","topics":["leaderboard"]}""",
        """{"action":"subscribe","channel":"depth","instruments":["A|1"]}""",
        """{"channel":"book","action":"unsubscribe","instruments":["A|1"],"topics":["x"]}""",
        """{"channel":"price","action":"unsubscribe","instruments":["A|1"],"topics":["x"]}""",
        """{"action":"alert_create","instrument_key":"A|1","condition":"above","price":2500,"instruments":["A|1"]}""",
        """{"action":"alert_delete","id":"al-1"}""",
        """{"action":"subscribe","channel":"volume_alerts","instruments":["A|1"]}""",
        """{"channel":"volume_alerts","action":"unsubscribe"}""",
        """{"action":"subscribe","instruments":["A|1"],"timing":true}""",
        """{"req":"c-1","action":"alert_create","instrument_key":"A|1","condition":"above","price":1}""",
        """{"action":"alert_list","req":"l-2"}""",
    ];

    // Where a string's content goes ('§'): the two fields the parser reads, property names, and what it skips.
    private static readonly string[] StringSlots =
    [
        """{"action":"§","instruments":[]}""",
        """{"action":"subscribe","instruments":["§"]}""",
        """{"action":"unsubscribe","instruments":["NSE_EQ|A","§"]}""",
        """{"§":"subscribe","action":"subscribe","instruments":[]}""",
        """{"§ction":"subscribe","instruments":[]}""",
        """{"action":"subscribe","instruments":[],"x":"§"}""",
        """{"action":"subscribe","instruments":[],"x":["§",{"§":1}]}""",
        """{"action":"ack","ids":["§"]}""",
        """{"action":"ack","ids":["n-1","§"],"instruments":[]}""",
        """{"action":"subscribe","channel":"§","topics":[],"instruments":[]}""",
        """{"action":"unsubscribe","channel":"topic","topics":["§"]}""",
        """{"action":"alert_list","req":"§"}""",
        """{"req":"§","action":"subscribe","instruments":[]}""",
    ];

    // Where a whole value goes ('§'): each field, an instrument, a skipped field, the root.
    private static readonly string[] ValueSlots =
    [
        """{"action":§,"instruments":[]}""",
        """{"action":"subscribe","instruments":§}""",
        """{"action":"subscribe","instruments":[§]}""",
        """{"action":"unsubscribe","instruments":["NSE_EQ|A",§]}""",
        """{"action":"subscribe","instruments":[],"x":§}""",
        """{"x":§,"action":"subscribe","instruments":[]}""",
        "§",
        "[§]",
        """{"action":"ack","ids":§}""",
        """{"action":"ack","ids":[§]}""",
        """{"action":"subscribe","instruments":[],"ids":§}""",
        """{"action":"subscribe","channel":§,"topics":[],"instruments":[]}""",
        """{"action":"subscribe","channel":"topic","topics":§}""",
        """{"action":"subscribe","channel":"topic","topics":[§]}""",
        """{"action":"subscribe","instruments":[],"timing":§}""",
        """{"action":"alert_delete","id":"al-1","req":§}""",
        """{"action":"unsubscribe","instruments":[],"req":§}""",
    ];

    // Every escape JSON has, escapes it has not, and every arrangement of UTF-16 surrogates.
    private static readonly string[] Escapes =
    [
        "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t",
        "\\u0000", "\\u001f", "\\u0041", "\\u0061", "\\u00e9", "\\u00E9", "\\uFEFF", "\\uFFFF", "\\uFFFE",
        "\\uD800", "\\uDBFF", "\\ud800", "\\uDC00", "\\uDFFF", "\\udfff",
        "\\uD83D\\uDE00", "\\ud83d\\ude00", "\\uDE00\\uD83D", "\\uD800\\uD800", "\\uDC00\\uDC00", "\\uD800\\u0041", "\\uD800A",
        "\\uD800\\\"", "\\uD800\\n", "\\uD83D\\uDE00\\uDE00", "\\uD83D\\uD83D\\uDE00",
        "\\x", "\\u", "\\u1", "\\u12", "\\u123", "\\u12G4", "\\uZZZZ", "\\U0041", "\\'", "\\0", "\\a", "\\ ", "\\",
        "\t", "\n", "\u0001", "\u007f", "😀", "é",
    ];

    // Byte sequences that are not UTF-8: overlong forms, encoded surrogates (CESU-8), beyond U+10FFFF, cut short.
    private static readonly byte[][] InvalidUtf8 =
    [
        [0xFF], [0xFE], [0x80], [0xBF], [0xC0, 0xAF], [0xC1, 0xBF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xED, 0xB0, 0x80],
        [0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98],
        [0x00],
    ];

    private static readonly string[] Values =
    [
        "42", "-0", "0", "1.5", "-1e-7", "1E+308", "1e999999", "-1e999999", "123456789012345678901234567890", new string('9', 10_000),
        "0." + new string('1', 10_000), "1e" + new string('9', 1000),
        "01", "1.", ".5", "+1", "-", "1e", "0x10", "NaN", "Infinity", "-Infinity",
        "true", "false", "null", "True", "nul", "{}", """{"a":[1]}""", "[]", "[[]]", "[1]", """["NSE_EQ|A"]""",
        "\"\"", "\"subscribe\"", "\"unsubscribe\"", "\"alert_list\"", "\"volume_alerts\"", "\"ack\"", "\"topic\"", "\"price\"", "\"NSE_EQ|A\"", "'subscribe'", "subscribe", "\"unterminated", "",
    ];

    // Pieces a mutation inserts: the tokens that change a message's structure, and the escapes that broke it once.
    private static readonly string[] Tokens =
    [
        "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\uD800", "\\uDC00", "\\uD83D\\uDE00", "null", "true", "1e999", "-0",
        "\"action\"", "\"instruments\"", "\"ids\"", "\"ack\"", "\"channel\"", "\"topic\"", "\"depth\"", "\"book\"", "\"topics\"", "\"timing\"", "\"req\"", "\"alert_list\"", "\"subscribe\"", "\"unsubscribe\"", "\"NSE_EQ|A\"", " ", "\u0000", "/*", "//",
    ];

    private enum Expected
    {
        Subscribe,
        Unsubscribe,
        Ack,
        SubscribeTopics,
        UnsubscribeTopics,
        SubscribeDepth,
        UnsubscribeDepth,
        SubscribeBook,
        UnsubscribeBook,
        InvalidMessage,
        UnknownAction,
        UnknownChannel,
        Alert,
        VolumeAlerts,
    }

    [Test]
    public void Parse_EndsInAnActionOrAStableError_ForEveryGeneratedMessage()
    {
        var failures = new List<(string Kind, string Text)>();
        var count = 0;
        foreach (var (kind, input) in Inputs())
        {
            count++;
            if (Problem(input) is { } problem)
            {
                failures.Add((kind, $"{kind} {Preview(input)}: {problem}"));
            }
        }

        TestContext.Out.WriteLine($"{count} inputs");
        Assert.That(count, Is.GreaterThan(25_000));
        Assert.That(failures.Count, Is.Zero, () =>
            $"{failures.Count} of {count} inputs failed; by kind: "
            + string.Join(", ", failures.GroupBy(static f => f.Kind.Split('(')[0]).Select(static g => $"{g.Key} {g.Count()}"))
            + "; the first: " + string.Join(" | ", failures.Take(10).Select(static f => f.Text)));
    }

    [TestCase("""{"action":"subscribe","instruments":["NSE_EQ|\uD800"]}""")]
    [TestCase("""{"action":"subscribe","instruments":["\uDC00"]}""")]
    [TestCase("""{"action":"subscribe","instruments":["\uDE00\uD83D"]}""")]
    [TestCase("""{"action":"\uD800subscribe","instruments":[]}""")]
    public void Parse_RejectsAsInvalidMessage_WhenAStringHoldsALoneSurrogate(string message)
    {
        var error = ClientMessageParser.Parse(Encoding.UTF8.GetBytes(message), out _, []);
        Assert.That(error?.Code, Is.EqualTo("invalid_message"));
        Assert.That(error?.Message, Does.Contain("escape").Or.Contain("UTF-8"));
    }

    [Test]
    public void Parse_ReadsAnEscapedSurrogatePair_AsOneCharacter()
    {
        var keys = new List<string>();
        var error = ClientMessageParser.Parse("""{"action":"subscribe","instruments":["A|\uD83D\uDE00"]}"""u8, out _, keys);
        Assert.That(error, Is.Null);
        Assert.That(keys, Is.EqualTo(new[] { "A|😀" }));
    }

    /// <summary>Null when the parser's answer is the expected one; otherwise what went wrong.</summary>
    private static string? Problem(byte[] input)
    {
        var expected = Reference(input, out var expectedKeys, out var expectedTiming, out var expectedReq);
        var keys = new List<string>();
        ClientMessageParser.Error? error;
        ClientAction action;
        bool? timing;
        string? req;
        try
        {
            error = ClientMessageParser.Parse(input, out action, keys, out timing, out _, out req);
        }
        catch (Exception ex)
        {
            return $"threw {ex.GetType().Name}: {ex.Message}";
        }

        if (error is { } e)
        {
            if (e.Code is not ("invalid_message" or "unknown_action" or "unknown_channel") || string.IsNullOrEmpty(e.Message))
            {
                return $"unstable error {e.Code} '{e.Message}'";
            }

            var code = expected switch
            {
                Expected.InvalidMessage => "invalid_message",
                Expected.UnknownAction => "unknown_action",
                Expected.UnknownChannel => "unknown_channel",
                _ => null,
            };
            return e.Code == code ? null : $"error {e.Code} ({e.Message}), expected {expected}";
        }

        var got = action switch
        {
            ClientAction.Subscribe => Expected.Subscribe,
            ClientAction.Unsubscribe => Expected.Unsubscribe,
            ClientAction.SubscribeTopics => Expected.SubscribeTopics,
            ClientAction.UnsubscribeTopics => Expected.UnsubscribeTopics,
            ClientAction.SubscribeDepth => Expected.SubscribeDepth,
            ClientAction.UnsubscribeDepth => Expected.UnsubscribeDepth,
            ClientAction.SubscribeBook => Expected.SubscribeBook,
            ClientAction.UnsubscribeBook => Expected.UnsubscribeBook,
            ClientAction.AlertCreate or ClientAction.AlertList or ClientAction.AlertDelete => Expected.Alert,
            ClientAction.SubscribeVolumeAlerts or ClientAction.UnsubscribeVolumeAlerts => Expected.VolumeAlerts,
            _ => Expected.Ack,
        };
        if (got != expected)
        {
            return $"parsed {action}, expected {expected}";
        }

        if (timing != expectedTiming)
        {
            return $"timing {timing}, expected {expectedTiming}";
        }

        if (req != expectedReq)
        {
            return $"req '{req}', expected '{expectedReq}'";
        }

        return keys.SequenceEqual(expectedKeys) ? null : $"parsed [{string.Join(", ", keys)}], expected [{string.Join(", ", expectedKeys)}]";
    }

    /// <summary>
    /// The rules of DESIGN.md read with <see cref="JsonDocument"/>: one object; <c>action</c> a string and
    /// <c>instruments</c> an array of strings wherever they appear (the last of a repeated field counts); other fields
    /// skipped unread; every property name, and each string the parser reads, must decode (no lone surrogate, valid UTF-8); depth at most 8.
    /// </summary>
    private static Expected Reference(byte[] input, out List<string> keys, out bool? timing, out string? req)
    {
        keys = [];
        timing = null;
        req = null;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(input, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException)
        {
            return Expected.InvalidMessage;
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return Expected.InvalidMessage;
            }

            string? action = null;
            List<string>? instruments = null;
            List<string>? ids = null;
            List<string>? topics = null;
            string? channel = null;
            bool? timingField = null;
            var reqValid = true;
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (Name(property) is not { } propertyName)
                {
                    return Expected.InvalidMessage;
                }

                if (propertyName == "action")
                {
                    if (property.Value.ValueKind != JsonValueKind.String || Decode(property.Value) is not { } name)
                    {
                        return Expected.InvalidMessage;
                    }

                    action = name;
                }
                else if (propertyName == "instruments")
                {
                    if (property.Value.ValueKind != JsonValueKind.Array)
                    {
                        return Expected.InvalidMessage;
                    }

                    instruments = [];
                    foreach (var element in property.Value.EnumerateArray())
                    {
                        if (element.ValueKind != JsonValueKind.String || Decode(element) is not { } key)
                        {
                            return Expected.InvalidMessage;
                        }

                        instruments.Add(key);
                    }
                }
                else if (propertyName == "channel")
                {
                    if (property.Value.ValueKind != JsonValueKind.String || Decode(property.Value) is not { } name)
                    {
                        return Expected.InvalidMessage;
                    }

                    channel = name;
                }
                else if (propertyName == "topics")
                {
                    if (property.Value.ValueKind != JsonValueKind.Array)
                    {
                        return Expected.InvalidMessage;
                    }

                    topics = [];
                    foreach (var element in property.Value.EnumerateArray())
                    {
                        if (element.ValueKind != JsonValueKind.String || Decode(element) is not { } topic)
                        {
                            return Expected.InvalidMessage;
                        }

                        topics.Add(topic);
                    }
                }
                else if (propertyName == "timing")
                {
                    // A boolean wherever it appears; only a price subscribe uses it.
                    if (property.Value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                    {
                        return Expected.InvalidMessage;
                    }

                    timingField = property.Value.ValueKind == JsonValueKind.True;
                }
                else if (propertyName == "req")
                {
                    // Any action's, the last one counting; only an alert_* action refuses one that is not a short string.
                    req = property.Value.ValueKind == JsonValueKind.String ? Decode(property.Value) : null;
                    reqValid = req is { Length: <= ClientMessageParser.MaxReqLength };
                    req = reqValid ? req : null;
                }
                else if (propertyName == "ids")
                {
                    // As instruments, whatever the action; an ack names at most MaxAckIds.
                    if (property.Value.ValueKind != JsonValueKind.Array || property.Value.GetArrayLength() > ClientMessageParser.MaxAckIds)
                    {
                        return Expected.InvalidMessage;
                    }

                    ids = [];
                    foreach (var element in property.Value.EnumerateArray())
                    {
                        if (element.ValueKind != JsonValueKind.String || Decode(element) is not { } id)
                        {
                            return Expected.InvalidMessage;
                        }

                        ids.Add(id);
                    }
                }
            }

            var topicChannel = action is "subscribe" or "unsubscribe" && channel == "topic";
            var alertAction = action is "alert_create" or "alert_list" or "alert_delete";
            keys = (action == "ack" ? ids : topicChannel ? topics : alertAction ? [] : instruments) ?? [];
            timing = action == "subscribe" && channel is null or "price" && instruments is not null ? timingField : null;
            return action switch
            {
                null => Expected.InvalidMessage,
                _ when alertAction => reqValid ? Expected.Alert : Expected.InvalidMessage,
                "subscribe" or "unsubscribe" when channel == "volume_alerts" => Expected.VolumeAlerts,
                "subscribe" or "unsubscribe" when topicChannel =>
                    topics is null ? Expected.InvalidMessage : action == "subscribe" ? Expected.SubscribeTopics : Expected.UnsubscribeTopics,
                "subscribe" or "unsubscribe" when channel is "depth" or "book" => instruments is null ? Expected.InvalidMessage
                    : (action, channel) switch
                    {
                        ("subscribe", "depth") => Expected.SubscribeDepth,
                        ("unsubscribe", "depth") => Expected.UnsubscribeDepth,
                        ("subscribe", _) => Expected.SubscribeBook,
                        _ => Expected.UnsubscribeBook,
                    },
                "subscribe" or "unsubscribe" when channel is not (null or "price") => Expected.UnknownChannel,
                "ack" => ids is null ? Expected.InvalidMessage : Expected.Ack,
                "subscribe" => instruments is null ? Expected.InvalidMessage : Expected.Subscribe,
                "unsubscribe" => instruments is null ? Expected.InvalidMessage : Expected.Unsubscribe,
                _ => Expected.UnknownAction,
            };
        }
    }

    private static string? Name(JsonProperty property)
    {
        try
        {
            return property.Name;
        }
        catch (InvalidOperationException)
        {
            // A name that does not decode could be either field: the message cannot be read.
            return null;
        }
    }

    private static string? Decode(JsonElement element)
    {
        try
        {
            return element.GetString();
        }
        catch (InvalidOperationException)
        {
            // Documented: the string holds invalid UTF-8 or an escaped lone surrogate.
            return null;
        }
    }

    private static IEnumerable<(string Kind, byte[] Input)> Inputs()
    {
        foreach (var valid in Valid)
        {
            var bytes = Encoding.UTF8.GetBytes(valid);
            yield return ("valid", bytes);
            for (var cut = 0; cut < bytes.Length; cut++)
            {
                yield return ("truncated", bytes[..cut]);
            }
        }

        foreach (var slot in StringSlots)
        {
            foreach (var first in Escapes)
            {
                yield return ("escape", Fill(slot, first));
                foreach (var second in Escapes)
                {
                    yield return ("escape_pair", Fill(slot, first + second));
                }
            }

            foreach (var invalid in InvalidUtf8)
            {
                yield return ("invalid_utf8", Fill(slot, "NSE_EQ|", invalid, "X"));
                yield return ("invalid_utf8_end", Fill(slot, "", invalid, ""));
            }
        }

        foreach (var slot in ValueSlots)
        {
            foreach (var value in Values)
            {
                yield return ("wrong_type", Fill(slot, value));
            }

            foreach (var depth in (int[])[1, 2, 3, 6, 7, 8, 9, 10, 64, 5000])
            {
                yield return ("deep_array", Fill(slot, new string('[', depth) + new string(']', depth)));
                yield return ("deep_object", Fill(slot, string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth)));
                yield return ("unclosed", Fill(slot, new string('[', depth)));
            }
        }

        // Repeated fields, each with a valid and a wrong value: which one counts must not depend on luck.
        string[] actions = ["\"subscribe\"", "\"unsubscribe\"", "\"ack\"", "\"buy\"", "5", "\"\\uD800\""];
        string[] lists = ["[]", "[\"NSE_EQ|A\"]", "[\"NSE_EQ|B\",\"NSE_EQ|C\"]", "5", "[5]", "[\"\\uDC00\"]"];
        foreach (var a1 in actions)
        {
            foreach (var a2 in actions)
            {
                foreach (var i1 in lists)
                {
                    foreach (var i2 in lists)
                    {
                        yield return ("duplicate", Encoding.UTF8.GetBytes($$"""{"action":{{a1}},"instruments":{{i1}},"action":{{a2}},"instruments":{{i2}}}"""));
                    }
                }
            }
        }

        foreach (var i1 in lists)
        {
            foreach (var i2 in lists)
            {
                yield return ("duplicate_ids", Encoding.UTF8.GetBytes($$"""{"action":"ack","ids":{{i1}},"instruments":{{i2}},"ids":{{i2}}}"""));
            }
        }

        // An ack's id count at the limit and past it, for each action.
        foreach (var count in (int[])[ClientMessageParser.MaxAckIds, ClientMessageParser.MaxAckIds + 1])
        {
            var ids = "[" + string.Join(",", Enumerable.Range(0, count).Select(static i => $"\"n-{i}\"")) + "]";
            foreach (var action in actions)
            {
                yield return ("ack_limit", Encoding.UTF8.GetBytes($$"""{"action":{{action}},"instruments":[],"ids":{{ids}}}"""));
            }
        }

        for (var seed = 0; seed < Seeds; seed++)
        {
            var random = new Random(seed);
            for (var i = 0; i < 20; i++)
            {
                var bytes = new byte[random.Next(0, 64)];
                random.NextBytes(bytes);
                yield return ($"random_bytes(seed {seed})", bytes);
            }

            for (var i = 0; i < MutationsPerSeed; i++)
            {
                yield return ($"mutated(seed {seed})", Mutate(random, Encoding.UTF8.GetBytes(Valid[random.Next(Valid.Length)])));
            }
        }
    }

    /// <summary>One to four edits: a byte replaced, a token inserted, a span deleted or repeated, the end cut off.</summary>
    private static byte[] Mutate(Random random, byte[] original)
    {
        var bytes = original.ToList();
        var edits = random.Next(1, 5);
        for (var e = 0; e < edits && bytes.Count > 0; e++)
        {
            var at = random.Next(bytes.Count);
            switch (random.Next(6))
            {
                case 0:
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 1:
                    bytes[at] = "{}[],:\"\\u0D8aFx \0"u8[random.Next(17)];
                    break;
                case 2:
                    bytes.InsertRange(at, Encoding.UTF8.GetBytes(Tokens[random.Next(Tokens.Length)]));
                    break;
                case 3:
                    bytes.RemoveRange(at, random.Next(1, Math.Min(8, bytes.Count - at) + 1));
                    break;
                case 4:
                    var length = random.Next(1, Math.Min(16, bytes.Count - at) + 1);
                    bytes.InsertRange(at, bytes.GetRange(at, length));
                    break;
                default:
                    bytes.InsertRange(at, InvalidUtf8[random.Next(InvalidUtf8.Length)]);
                    break;
            }
        }

        return [.. bytes];
    }

    private static byte[] Fill(string slot, string content) => Encoding.UTF8.GetBytes(slot.Replace("§", content, StringComparison.Ordinal));

    private static byte[] Fill(string slot, string before, byte[] raw, string after)
    {
        var parts = slot.Split('§');
        var bytes = new List<byte>(Encoding.UTF8.GetBytes(parts[0]));
        foreach (var part in parts.Skip(1))
        {
            bytes.AddRange(Encoding.UTF8.GetBytes(before));
            bytes.AddRange(raw);
            bytes.AddRange(Encoding.UTF8.GetBytes(after + part));
        }

        return [.. bytes];
    }

    /// <summary>The input as text, with every byte outside printable ASCII as \xNN, cut at 160 characters.</summary>
    private static string Preview(byte[] bytes)
    {
        var text = new StringBuilder();
        foreach (var b in bytes.Take(160))
        {
            text.Append(b is >= 0x20 and < 0x7F ? ((char)b).ToString() : $"\\x{b:X2}");
        }

        return bytes.Length <= 160 ? text.ToString() : $"{text}... ({bytes.Length} bytes)";
    }
}
