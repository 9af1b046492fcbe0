using System.Diagnostics;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>
/// The runtime settings the daemon is deployed with: the <c>Environment=</c> lines of
/// <c>config/systemd/pricedaemon.service</c> (the supervisor program sets the same). Every server the harness
/// starts gets them, so the figures are those of the daemon as installed, and the baseline runs under the
/// same runtime settings.
/// </summary>
internal static class DeployedRuntime
{
    private static IReadOnlyList<KeyValuePair<string, string>> _variables = [];

    public static IReadOnlyList<KeyValuePair<string, string>> Variables => _variables;

    public static void Load(string repositoryRoot) =>
        _variables = Parse(File.ReadAllText(Path.Combine(repositoryRoot, "config", "systemd", "pricedaemon.service")));

    public static void ApplyTo(ProcessStartInfo child)
    {
        foreach (var (name, value) in _variables)
        {
            child.Environment[name] = value;
        }
    }

    /// <summary>The NAME=value words of every <c>Environment=</c> line, in order (systemd.exec; no quoting is used).</summary>
    internal static IReadOnlyList<KeyValuePair<string, string>> Parse(string unit)
    {
        const string Directive = "Environment=";
        var variables = new List<KeyValuePair<string, string>>();
        foreach (var raw in unit.Split('\n'))
        {
            var line = raw.Trim();
            if (!line.StartsWith(Directive, StringComparison.Ordinal))
            {
                continue;
            }

            foreach (var word in line[Directive.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var equals = word.IndexOf('=');
                if (equals <= 0)
                {
                    throw new FormatException($"not NAME=value in the unit's Environment= line: '{word}'");
                }

                variables.Add(new(word[..equals], word[(equals + 1)..]));
            }
        }

        return variables;
    }
}
