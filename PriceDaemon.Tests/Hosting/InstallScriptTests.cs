using System.Diagnostics;

namespace PriceDaemon.Tests.Hosting;

/// <summary>install.sh as an operator runs it, staged under a temporary prefix (no user, no service manager).</summary>
public sealed class InstallScriptTests
{
    private static readonly string Repository = FindRepository();

    private string _prefix = null!;

    [SetUp]
    public void SetUp() => _prefix = Directory.CreateTempSubdirectory("pricedaemon-install-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_prefix, recursive: true);

    [Test]
    public async Task InstallScript_IsShellcheckClean()
    {
        var (exit, output) = await RunAsync("shellcheck", "install.sh", "test.sh", ".ci/run");
        Assert.That(exit, Is.Zero, output);
    }

    [Test]
    public async Task StagedInstall_IsIdempotent_KeepsEditedConfig_AndUninstallKeepsData()
    {
        var (exit, output) = await RunAsync("bash", "install.sh", "--prefix", _prefix);
        Assert.That(exit, Is.Zero, output);
        Assert.That(File.Exists(Path.Combine(_prefix, "opt/pricedaemon/PriceDaemon.dll")), Is.True);
        var config = Path.Combine(_prefix, "etc/pricedaemon/appsettings.json");
        Assert.That(File.ReadAllText(config), Does.Contain($"{_prefix}/var/lib/pricedaemon/prices.db"));
        var unit = File.ReadAllText(Path.Combine(_prefix, "etc/systemd/system/pricedaemon.service"));
        Assert.That(unit, Does.Contain("Type=notify").And.Contain("NoNewPrivileges=true").And.Contain("ProtectSystem=strict")
            .And.Contain($"ReadWritePaths={_prefix}/var/lib/pricedaemon {_prefix}/var/log/pricedaemon").And.Contain("LimitNOFILE=65536"));
        Assert.That(unit, Does.Not.Contain("@PREFIX@"));
        var (verified, verifyOutput) = await RunAsync("systemd-analyze", "verify", Path.Combine(_prefix, "etc/systemd/system/pricedaemon.service"));
        Assert.That((verified, verifyOutput), Is.EqualTo((0, "")), "systemd-analyze verify must accept the unit without warnings");

        // An operator edits the config and keeps some data; a second run changes neither.
        await File.WriteAllTextAsync(config, "{ \"Urls\": \"http://127.0.0.1:9999\" }\n");
        var data = Path.Combine(_prefix, "var/lib/pricedaemon/prices.db");
        await File.WriteAllTextAsync(data, "precious");
        (exit, output) = await RunAsync("bash", "install.sh", "--prefix", _prefix);
        Assert.That(exit, Is.Zero, output);
        Assert.That(await File.ReadAllTextAsync(config), Does.Contain("9999"));
        Assert.That(File.Exists(config + ".new"), Is.True, "the new default is left beside the edited config");
        Assert.That(output, Does.Contain("kept your edited"));

        (exit, output) = await RunAsync("bash", "install.sh", "--prefix", _prefix, "--uninstall");
        Assert.That(exit, Is.Zero, output);
        Assert.That(Directory.Exists(Path.Combine(_prefix, "opt/pricedaemon")), Is.False);
        Assert.That(await File.ReadAllTextAsync(data), Is.EqualTo("precious"));

        (exit, output) = await RunAsync("bash", "install.sh", "--prefix", _prefix, "--uninstall", "--purge");
        Assert.That(exit, Is.Zero, output);
        Assert.That(File.Exists(data), Is.False);
    }

    [Test]
    public async Task UnknownOption_FailsWithAClearMessage()
    {
        var (exit, output) = await RunAsync("bash", "install.sh", "--frobnicate");
        Assert.That(exit, Is.Not.Zero);
        Assert.That(output, Does.Contain("unknown option '--frobnicate'"));
    }

    private static async Task<(int Exit, string Output)> RunAsync(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file, args)
        {
            WorkingDirectory = Repository,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    private static string FindRepository()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "install.sh")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("install.sh not found above the test folder");
    }
}
