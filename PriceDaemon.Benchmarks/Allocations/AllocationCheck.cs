using System.Text.Json;

namespace PriceDaemon.Benchmarks.Allocations;

/// <summary>The allowed bytes per operation of one benchmark method (every parameter value of it).</summary>
internal sealed record AllocationBudget(string Benchmark, long MaxBytesPerOp, string Why);

/// <summary>One row of BenchmarkDotNet's results: <c>Type.Method</c>, its parameters and the measured bytes per operation.</summary>
internal sealed record AllocationResult(string Benchmark, string Parameters, long BytesPerOp)
{
    public string Display => Parameters.Length == 0 ? Benchmark : $"{Benchmark}({Parameters})";
}

/// <summary>
/// Holds BenchmarkDotNet's measured allocations to <c>config/allocation-budgets.json</c>. A benchmark with no
/// budget fails too: a new hot-path benchmark must say what it may allocate.
/// </summary>
internal static class AllocationCheck
{
    public const string DefaultBudgetsPath = "config/allocation-budgets.json";
    public const string DefaultResultsPath = "BenchmarkDotNet.Artifacts/results";

    public static int Run(string[] args, TextWriter output)
    {
        var budgetsPath = Option(args, "--budgets") ?? DefaultBudgetsPath;
        var resultsPath = Option(args, "--results") ?? DefaultResultsPath;
        var reports = Directory.Exists(resultsPath) ? Directory.GetFiles(resultsPath, "*-report-brief.json") : [];
        if (reports.Length == 0)
        {
            output.WriteLine($"check-allocations: no *-report-brief.json in {resultsPath}; run the benchmarks first (dotnet run -c Release --project PriceDaemon.Benchmarks -- --filter '*')");
            return 2;
        }

        var budgets = ParseBudgets(File.ReadAllText(budgetsPath));
        var results = reports.SelectMany(path => ParseResults(File.ReadAllText(path))).ToList();
        var violations = Check(budgets, results);
        foreach (var result in results)
        {
            output.WriteLine($"  {result.Display}: {result.BytesPerOp} B/op");
        }

        foreach (var violation in violations)
        {
            output.WriteLine($"ALLOCATION BUDGET MISSED: {violation}");
        }

        output.WriteLine(violations.Count == 0
            ? $"check-allocations: {results.Count} results within {budgetsPath}"
            : $"check-allocations: {violations.Count} violation(s) of {budgetsPath}");
        return violations.Count == 0 ? 0 : 1;
    }

    public static IReadOnlyList<AllocationBudget> ParseBudgets(string json)
    {
        using var document = JsonDocument.Parse(json);
        return [.. document.RootElement.GetProperty("budgets").EnumerateArray().Select(static b => new AllocationBudget(
            b.GetProperty("benchmark").GetString()!,
            b.GetProperty("maxBytesPerOp").GetInt64(),
            b.TryGetProperty("why", out var why) ? why.GetString() ?? "" : ""))];
    }

    /// <summary>Reads a BenchmarkDotNet brief JSON report (<c>JsonExporter.Brief</c>).</summary>
    public static IReadOnlyList<AllocationResult> ParseResults(string json)
    {
        using var document = JsonDocument.Parse(json);
        var results = new List<AllocationResult>();
        foreach (var benchmark in document.RootElement.GetProperty("Benchmarks").EnumerateArray())
        {
            // A benchmark that failed to run has no memory figures; it cannot be held to a budget.
            if (!benchmark.TryGetProperty("Memory", out var memory)
                || !memory.TryGetProperty("BytesAllocatedPerOperation", out var bytes)
                || bytes.ValueKind != JsonValueKind.Number)
            {
                continue;
            }

            results.Add(new AllocationResult(
                $"{benchmark.GetProperty("Type").GetString()}.{benchmark.GetProperty("Method").GetString()}",
                benchmark.TryGetProperty("Parameters", out var p) ? p.GetString() ?? "" : "",
                bytes.GetInt64()));
        }

        return results;
    }

    public static IReadOnlyList<string> Check(IReadOnlyList<AllocationBudget> budgets, IReadOnlyList<AllocationResult> results)
    {
        var byName = budgets.ToDictionary(static b => b.Benchmark, StringComparer.Ordinal);
        var violations = new List<string>();
        foreach (var result in results)
        {
            if (!byName.TryGetValue(result.Benchmark, out var budget))
            {
                violations.Add($"{result.Display} allocated {result.BytesPerOp} B/op and has no budget in {DefaultBudgetsPath}");
            }
            else if (result.BytesPerOp > budget.MaxBytesPerOp)
            {
                violations.Add($"{result.Display} allocated {result.BytesPerOp} B/op, budget {budget.MaxBytesPerOp} B/op ({budget.Why})");
            }
        }

        return violations;
    }

    private static string? Option(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }
}
