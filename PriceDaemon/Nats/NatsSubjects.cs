using System.Text;

namespace PriceDaemon.Nats;

/// <summary>
/// The subject scheme: <c>NSE_EQ|INE002A01018</c> is published on <c>prices.NSE_EQ.INE002A01018</c> and stored in the
/// bucket under <c>NSE_EQ.INE002A01018</c>. Segment and id are escaped so that each stays one token that is valid both
/// in a subject and in a key-value key: letters, digits, '_' and '-' pass; every other UTF-8 byte (including '.',
/// '*', '>', spaces and '=' itself) becomes <c>=XX</c> (upper-case hex). An empty part is a lone <c>=</c>, and a key
/// without '|' has the empty segment. Edges never decode: they map subjects back through their own instrument list.
/// </summary>
internal static class NatsSubjects
{
    public const string Prefix = "prices";
    public const string All = "prices.>";

    public static string Subject(string instrumentKey) => $"{Prefix}.{KvKey(instrumentKey)}";

    public static string KvKey(string instrumentKey)
    {
        var bar = instrumentKey.IndexOf('|', StringComparison.Ordinal);
        var segment = bar < 0 ? "" : instrumentKey[..bar];
        var id = bar < 0 ? instrumentKey : instrumentKey[(bar + 1)..];
        return $"{Escape(segment)}.{Escape(id)}";
    }

    public static string Escape(string part)
    {
        if (part.Length == 0)
        {
            return "=";
        }

        var bytes = Encoding.UTF8.GetBytes(part);
        var text = new StringBuilder(bytes.Length);
        foreach (var b in bytes)
        {
            if (b is (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'a' and <= (byte)'z') or (>= (byte)'0' and <= (byte)'9') or (byte)'_' or (byte)'-')
            {
                text.Append((char)b);
            }
            else
            {
                text.Append('=').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return text.ToString();
    }

    /// <summary>The text <see cref="Escape"/> made <paramref name="token"/> from: push buckets name announcements and topics by key.</summary>
    public static string Unescape(string token)
    {
        if (token == "=")
        {
            return "";
        }

        var bytes = new List<byte>(token.Length);
        for (var i = 0; i < token.Length; i++)
        {
            if (token[i] == '=' && i + 2 < token.Length && byte.TryParse(token.AsSpan(i + 1, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                i += 2;
            }
            else
            {
                bytes.Add((byte)token[i]);
            }
        }

        return Encoding.UTF8.GetString([.. bytes]);
    }

    /// <summary>Null when <paramref name="filter"/> is a valid filter under <c>prices.</c>; otherwise why not.</summary>
    public static string? Problem(string filter)
    {
        if (!filter.StartsWith(Prefix + ".", StringComparison.Ordinal))
        {
            return $"'{filter}' must start with '{Prefix}.'";
        }

        var tokens = filter.Split('.');
        for (var i = 0; i < tokens.Length; i++)
        {
            var token = tokens[i];
            if (token.Length == 0 || token.Any(char.IsWhiteSpace))
            {
                return $"'{filter}' has an empty token or a space";
            }

            if ((token.Contains('>', StringComparison.Ordinal) && (token != ">" || i != tokens.Length - 1))
                || (token.Contains('*', StringComparison.Ordinal) && token != "*"))
            {
                return $"'{filter}': '*' must be a whole token and '>' the whole last token";
            }
        }

        return null;
    }

    /// <summary>The bucket's key filter that matches what a subject filter matches: <c>prices.NSE_EQ.&gt;</c> is <c>NSE_EQ.&gt;</c>.</summary>
    public static string KvFilter(string subjectFilter) => subjectFilter[(Prefix.Length + 1)..];
}
