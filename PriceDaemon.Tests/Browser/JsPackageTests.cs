using System.Text.Json;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Browser;

/// <summary>
/// The npm package @pricedaemon/client (clients/js) as an app gets it: `npm pack`, the tarball installed into a
/// scratch app, its typed example compiled by TypeScript against the installed types and run by node against
/// the real daemon; and `tsc --noEmit` over the package's typed examples (every exported type, React's too).
/// </summary>
public sealed class JsPackageTests
{
    private string _folder = null!;

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("pricedaemon-npm-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    [Test]
    public async Task PackedTarball_InstallsIntoAScratchApp_AndItsTypedExampleCompilesAndGetsALivePrice()
    {
        var (packExit, packOutput) = await JsPackage.RunAsync("npm", JsPackage.Directory, "pack", "--json", "--pack-destination", _folder);
        Assert.That(packExit, Is.Zero, packOutput);
        var tarball = Path.Combine(_folder, JsonDocument.Parse(packOutput[packOutput.IndexOf('[', StringComparison.Ordinal)..]).RootElement[0].GetProperty("filename").GetString()!);
        Assert.That(File.Exists(tarball), Is.True, packOutput);

        var app = Directory.CreateDirectory(Path.Combine(_folder, "app")).FullName;
        await File.WriteAllTextAsync(Path.Combine(app, "package.json"), """{ "name": "scratch-app", "private": true, "type": "module" }""");
        var (installExit, installOutput) = await JsPackage.RunAsync("npm", app, "install", "--offline", "--no-audit", "--no-fund", tarball);
        Assert.That(installExit, Is.Zero, installOutput);
        // No runtime dependencies, and react is an optional peer: nothing else was installed.
        Assert.That(Directory.GetDirectories(Path.Combine(app, "node_modules")).Select(Path.GetFileName), Is.EqualTo(new[] { "@pricedaemon" }));
        Assert.That(File.Exists(Path.Combine(app, "node_modules", "@pricedaemon", "client", "src", "price-socket.d.ts")), Is.True);

        File.Copy(Path.Combine(JsPackage.Directory, "examples", "typed-client.ts"), Path.Combine(app, "typed-client.ts"));
        await File.WriteAllTextAsync(Path.Combine(app, "tsconfig.json"), """
            { "compilerOptions": { "target": "es2022", "module": "nodenext", "moduleResolution": "nodenext", "lib": ["es2022", "dom"],
                                   "strict": true, "types": [], "outDir": "out" },
              "files": ["typed-client.ts"] }
            """);
        var (tscExit, tscOutput) = await JsPackage.RunAsync(JsPackage.Bin("tsc"), app, "-p", "tsconfig.json");
        Assert.That(tscExit, Is.Zero, tscOutput);

        await using var daemon = await DaemonProcess.StartAsync(_folder, "--Feed:Simulated:MinIntervalMs=100", "--Feed:Simulated:MaxIntervalMs=200");
        const string Reliance = "NSE_EQ|INE002A01018";
        var (runExit, runOutput) = await JsPackage.RunAsync("node", app, "--experimental-websocket", "--no-warnings", Path.Combine("out", "typed-client.js"), daemon.WebSocketUri.ToString(), Reliance);
        Assert.That(runExit, Is.Zero, runOutput);
        var line = JsonDocument.Parse(runOutput.Split('\n').First(l => l.StartsWith('{'))).RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(line.GetProperty("key").GetString(), Is.EqualTo(Reliance));
            Assert.That(line.GetProperty("last_price").GetDouble(), Is.GreaterThan(0));
            Assert.That(line.GetProperty("type").GetString(), Is.EqualTo("price_update"));
        });
    }

    [Test]
    public async Task TypedExamples_TypeCheck_WithEveryExportedType()
    {
        var (exit, output) = await JsPackage.RunAsync(JsPackage.Bin("tsc"), JsPackage.Directory, "--noEmit", "-p", "tsconfig.json");
        Assert.That(exit, Is.Zero, output);
    }

    [Test]
    public async Task TypeCheck_Fails_WhenAFrameIsMisused()
    {
        // The check above can fail: a frame field that does not exist is an error.
        // Inside the package folder, so that '@pricedaemon/client' resolves to the package itself.
        var example = Path.Combine(JsPackage.Directory, $"misuse-{Environment.ProcessId}.ts");
        await File.WriteAllTextAsync(example, """
            import type { ServerFrame } from '@pricedaemon/client';
            export function f(frame: ServerFrame): number {
              return frame.type === 'price_update' ? frame.data.lastPrice : 0;
            }
            """);
        var config = Path.Combine(JsPackage.Directory, $"tsconfig.misuse-{Environment.ProcessId}.json");
        await File.WriteAllTextAsync(config, $$"""
            { "extends": "./tsconfig.json", "include": [], "files": [{{JsonSerializer.Serialize(Path.GetFileName(example))}}] }
            """);
        try
        {
            var (exit, output) = await JsPackage.RunAsync(JsPackage.Bin("tsc"), JsPackage.Directory, "--noEmit", "-p", config);
            Assert.That(exit, Is.Not.Zero, output);
            Assert.That(output, Does.Contain("lastPrice"));
        }
        finally
        {
            File.Delete(config);
            File.Delete(example);
        }
    }
}
