using System.Diagnostics;
using System.Text.RegularExpressions;

namespace PriceDaemon.Tests.Browser;

/// <summary>
/// The unit tests of price-socket.js (reconnect and backoff, reference counting, seq ordering, caching) and
/// of the React hook, run by node's built-in test runner. Run here so that they count in the one test
/// total; run them alone with <c>node --test PriceDaemon.Tests/js/price-socket.test.js</c>.
/// </summary>
public sealed partial class ClientLibraryTests
{
    [Test]
    public async Task PriceSocketJs_UnitTests_PassUnderNode()
    {
        var root = RepositoryRoot();
        var info = new ProcessStartInfo("node", ["--test", "--test-reporter=tap", Path.Combine("PriceDaemon.Tests", "js", "price-socket.test.js")])
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var node = Process.Start(info) ?? throw new InvalidOperationException("node did not start (test.sh installs it)");
        var stdout = node.StandardOutput.ReadToEndAsync();
        var stderr = node.StandardError.ReadToEndAsync();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2)))
        {
            await node.WaitForExitAsync(timeout.Token);
        }

        var output = await stdout + await stderr;
        TestContext.Out.WriteLine(output);
        var passed = PassLine().Match(output);
        Assert.Multiple(() =>
        {
            Assert.That(node.ExitCode, Is.Zero, "node --test failed; its output is above");
            Assert.That(passed.Success && int.Parse(passed.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 20, Is.True, "fewer node tests ran than exist");
        });
    }

    [GeneratedRegex(@"^# pass (\d+)$", RegexOptions.Multiline)]
    private static partial Regex PassLine();

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (!File.Exists(Path.Combine(dir.FullName, "PriceDaemon.sln")))
        {
            dir = dir.Parent ?? throw new DirectoryNotFoundException("PriceDaemon.sln not found above the test directory");
        }

        return dir.FullName;
    }
}
