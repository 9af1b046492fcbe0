using System.Diagnostics;

namespace PriceDaemon.Tests.Browser;

/// <summary>
/// The npm package in clients/js: where it is, and running its node tools (npm, tsc, esbuild) as processes.
/// Its dev dependencies (react, react-dom, esbuild, typescript, pinned in package-lock.json) are installed by
/// test.sh with <c>npm ci</c>; without them the tests fail saying so, never skip.
/// </summary>
internal static class JsPackage
{
    public static string Directory { get; } = Path.Combine(RepositoryRoot(), "clients", "js");

    public static string Bin(string tool)
    {
        var path = Path.Combine(Directory, "node_modules", ".bin", tool);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path} is missing: run `npm ci` in clients/js (test.sh does)", path);
        }

        return path;
    }

    /// <summary>Runs a program to its end; returns its exit code and everything it printed.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string program, string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo(program, args)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.Environment["npm_config_update_notifier"] = "false";
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{program} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2)))
        {
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{program} {string.Join(' ', args)} ran for over 2 minutes");
            }
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>Bundles the React test app (clients/js/test-app) with real React; returns the bundle.</summary>
    public static async Task<string> BuildTestAppAsync(string mode)
    {
        var outfile = Path.Combine(Path.GetTempPath(), $"pricedaemon-test-app-{Environment.ProcessId}-{mode}.js");
        Bin("esbuild");
        var (exit, output) = await RunAsync("node", Directory, Path.Combine("test-app", "build.mjs"), outfile, mode);
        if (exit != 0)
        {
            throw new InvalidOperationException($"the test app did not build: {output}");
        }

        var bundle = await File.ReadAllTextAsync(outfile);
        File.Delete(outfile);
        return bundle;
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(dir.FullName, "PriceDaemon.sln")))
        {
            dir = dir.Parent ?? throw new DirectoryNotFoundException("PriceDaemon.sln not found above the test directory");
        }

        return dir.FullName;
    }
}
