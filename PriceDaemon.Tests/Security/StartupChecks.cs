using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace PriceDaemon.Tests.Security;

/// <summary>Runs the daemon's start-up validation in this process, without listening.</summary>
internal static class StartupChecks
{
    /// <summary>The validation failure for these settings, or null when the daemon would start.</summary>
    public static string? Failure(IDictionary<string, string> settings, string urls = "http://127.0.0.1:0")
    {
        string[] args = ["--urls", urls, "--Feed:Source=None", .. settings.Select(static s => $"--{s.Key}={s.Value}")];
        var app = Program.Build(args);
        try
        {
            app.Services.GetRequiredService<IStartupValidator>().Validate();
            return null;
        }
        catch (OptionsValidationException ex)
        {
            return ex.Message;
        }
        finally
        {
            ((IDisposable)app).Dispose();
        }
    }
}
