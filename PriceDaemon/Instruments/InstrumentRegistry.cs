using System.Collections.Frozen;
using System.Globalization;

namespace PriceDaemon.Instruments;

/// <summary>
/// The instrument universe, fixed at start-up. Keys are interned to dense ids at the edge (feeds, client
/// messages) so that the pipeline indexes arrays and never hashes strings per tick.
/// </summary>
public sealed class InstrumentRegistry
{
    private readonly Instrument[] _byId;
    private readonly FrozenDictionary<string, Instrument> _byKey;
    private readonly FrozenDictionary<string, Instrument>.AlternateLookup<ReadOnlySpan<char>> _byKeySpan;

    public InstrumentRegistry(IEnumerable<(string Key, string Symbol, string Name, double ReferencePrice)> rows)
    {
        var list = new List<Instrument>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            if (!seen.Add(row.Key))
            {
                throw new InvalidDataException($"instrument '{row.Key}' is listed twice");
            }

            list.Add(new Instrument(list.Count, row.Key, row.Symbol, row.Name, row.ReferencePrice));
        }

        _byId = [.. list];
        _byKey = list.ToFrozenDictionary(i => i.Key, StringComparer.Ordinal);
        _byKeySpan = _byKey.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public int Count => _byId.Length;

    public IReadOnlyList<Instrument> All => _byId;

    public Instrument this[int id] => _byId[id];

    public bool TryGet(string key, out Instrument instrument) => _byKey.TryGetValue(key, out instrument!);

    public bool TryGet(ReadOnlySpan<char> key, out Instrument instrument) => _byKeySpan.TryGetValue(key, out instrument!);

    /// <summary>
    /// Reads <c>instrument_key,symbol,name,reference_price</c> rows (header first) and appends
    /// <paramref name="synthetic"/> generated instruments for load runs.
    /// </summary>
    public static InstrumentRegistry Load(TextReader csv, string sourceName, int synthetic)
    {
        var rows = new List<(string, string, string, double)>();
        var header = csv.ReadLine();
        if (header is null || !header.StartsWith("instrument_key,", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{sourceName}: the first line must be the header 'instrument_key,symbol,name,reference_price'");
        }

        var lineNumber = 1;
        while (csv.ReadLine() is { } line)
        {
            lineNumber++;
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var fields = line.Split(',');
            if (fields.Length != 4
                || fields[0].Length == 0
                || !double.TryParse(fields[3], NumberStyles.Float, CultureInfo.InvariantCulture, out var price)
                || !(price > 0) || double.IsInfinity(price))
            {
                throw new InvalidDataException($"{sourceName}:{lineNumber}: expected 'instrument_key,symbol,name,reference_price' with a positive price");
            }

            rows.Add((fields[0], fields[1], fields[2], price));
        }

        for (var i = 1; i <= synthetic; i++)
        {
            var n = i.ToString("D7", CultureInfo.InvariantCulture);
            // Spread synthetic prices over a realistic range so frames have realistic widths.
            var price = 100 + (i * 7919 % 4900);
            rows.Add(($"NSE_EQ|SYN{n}", $"SYN{n}", $"Synthetic instrument {n}", price));
        }

        return new InstrumentRegistry(rows);
    }
}
