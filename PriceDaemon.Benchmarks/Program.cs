using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Running;
using PriceDaemon.Benchmarks.Allocations;
using PriceDaemon.Benchmarks.EndToEnd;

namespace PriceDaemon.Benchmarks;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        switch (args.FirstOrDefault())
        {
            case "e2e":
                return await E2eCommand.RunAsync(args[1..]).ConfigureAwait(false);
            case "baseline-server":
                return await BaselineServer.RunAsync(args[1..]).ConfigureAwait(false);
            case "raw-sender":
                return RawCeiling.RunSender(args[1..]);
            case "push":
                return await Push.PushCommand.RunAsync(args[1..], Console.Out, Console.Error).ConfigureAwait(false);
            case "check-allocations":
                return AllocationCheck.Run(args[1..], Console.Out);
            default:
                // The brief JSON report carries raw bytes per operation, which check-allocations reads.
                var config = DefaultConfig.Instance.AddExporter(JsonExporter.Brief);
                var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
                return summaries.Any(static s => s.HasCriticalValidationErrors || s.Reports.Any(static r => !r.Success)) ? 1 : 0;
        }
    }
}
