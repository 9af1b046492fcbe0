using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace PriceDaemon.Instruments;

/// <summary>One tradable instrument. Its <see cref="Id"/> is the small integer the hot path uses instead of the key.</summary>
public sealed class Instrument
{
    public Instrument(int id, string key, string symbol, string name, double referencePrice)
    {
        Id = id;
        Key = key;
        Symbol = symbol;
        Name = name;
        ReferencePrice = referencePrice;
        // Encoded once: every frame for this instrument copies these bytes instead of escaping the key again.
        KeyJsonUtf8 = Encoding.UTF8.GetBytes(JsonEncodedText.Encode(key, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).Value);
    }

    public int Id { get; }

    /// <summary>The Upstox instrument key, e.g. <c>NSE_EQ|INE002A01018</c>.</summary>
    public string Key { get; }

    public string Symbol { get; }

    public string Name { get; }

    /// <summary>Previous close used for <c>change_percent</c> until a stored close replaces it.</summary>
    public double ReferencePrice { get; }

    /// <summary>The key as a JSON string body (escaped, without quotes), in UTF-8.</summary>
    internal byte[] KeyJsonUtf8 { get; }
}
