namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>A version of one instrument's price: what the daemon's REST cache held, or what a client last received.</summary>
internal readonly record struct PriceVersion(long Seq, double LastPrice);

/// <summary>What one client last received for one subscribed instrument; null when it received nothing.</summary>
internal readonly record struct ClientLastValue(int Client, string InstrumentKey, PriceVersion? Received);

internal sealed record ConsistencyResult(int Checked, int Current, int Newer, int Lost, int WrongPrice, IReadOnlyList<string> Examples)
{
    /// <summary>Values a client never got: it holds an older seq than the daemon had, or a different price for the same seq.</summary>
    public int Failures => Lost + WrongPrice;
}

/// <summary>
/// Last-value consistency while the feed keeps ticking (the simulated feed never goes quiet). The harness
/// reads the daemon's prices over REST, lets the clients read for a grace period, then takes their last
/// values. A daemon that delivers every newest value holds, for every subscription, that seq or a newer
/// one; an older seq after the grace period is a lost last value, and the same seq with another price is a
/// corrupt one.
/// </summary>
internal static class Consistency
{
    private const int MaxExamples = 5;

    public static ConsistencyResult Check(IReadOnlyDictionary<string, PriceVersion> daemon, IEnumerable<ClientLastValue> clients)
    {
        int total = 0, current = 0, newer = 0, lost = 0, wrong = 0;
        var examples = new List<string>();
        foreach (var value in clients)
        {
            if (!daemon.TryGetValue(value.InstrumentKey, out var expected))
            {
                // The daemon has no price yet, so no client can be behind it.
                continue;
            }

            total++;
            if (value.Received is not { } received || received.Seq < expected.Seq)
            {
                lost++;
                Example(examples, $"client {value.Client} {value.InstrumentKey}: has seq {Describe(value)}, daemon had seq {expected.Seq}");
            }
            else if (received.Seq > expected.Seq)
            {
                newer++;
            }
            else if (received.LastPrice.Equals(expected.LastPrice))
            {
                current++;
            }
            else
            {
                wrong++;
                Example(examples, $"client {value.Client} {value.InstrumentKey}: seq {received.Seq} price {received.LastPrice}, daemon {expected.LastPrice}");
            }
        }

        return new ConsistencyResult(total, current, newer, lost, wrong, examples);

        static string Describe(ClientLastValue v) => v.Received is { } r ? r.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture) : "none";
    }

    private static void Example(List<string> examples, string text)
    {
        if (examples.Count < MaxExamples)
        {
            examples.Add(text);
        }
    }
}
