using PriceDaemon.Tests.Security;

namespace PriceDaemon.Tests.Hosting;

/// <summary>
/// A value that does not fit its key is a failure of the options' own start-up validation, named by the key, like any
/// out-of-range value: not an exception of the binder, nor of code that read the key before the options did.
/// </summary>
public sealed class ConfigurationTests
{
    [TestCase("Throttle:MinIntervalMs", "abc", "Throttle:MinIntervalMs: 'abc' is not a whole number")]
    [TestCase("Storage:FlushIntervalMs", "1.5", "Storage:FlushIntervalMs: '1.5' is not a whole number")]
    [TestCase("Limits:MaxMessageBytes", "99999999999", "Limits:MaxMessageBytes: '99999999999' is not a whole number")]
    [TestCase("Feed:Simulated:MaxMovePercent", "lots", "Feed:Simulated:MaxMovePercent: 'lots' is not a number")]
    [TestCase("Feed:Simulated:Seed", "x", "Feed:Simulated:Seed: 'x' is not a whole number")]
    [TestCase("Feed:Upstox:MaxInstruments", "ten", "Feed:Upstox:MaxInstruments: 'ten' is not a whole number")]
    [TestCase("Server:AllowMissingOrigin", "maybe", "Server:AllowMissingOrigin: 'maybe' is not true or false")]
    [TestCase("Auth:Jwt:ClockSkewSeconds", "30s", "Auth:Jwt:ClockSkewSeconds: '30s' is not a whole number")]
    [TestCase("Auth:Mode", "Basic", "Auth:Mode: 'Basic' is not one of None, Jwt")]
    [TestCase("Nats:Publish", "maybe", "Nats:Publish: 'maybe' is not true or false")]
    [TestCase("Nats:KvFlushIntervalMs", "soon", "Nats:KvFlushIntervalMs: 'soon' is not a whole number")]
    public void StartupValidation_NamesTheKeyAndTheValue_WhenAValueDoesNotConvert(string key, string value, string expected)
    {
        Assert.That(StartupChecks.Failure(new Dictionary<string, string> { [key] = value }), Is.EqualTo(expected));
    }

    [Test]
    public void StartupValidation_RefusesAnUndefinedAuthMode_ThatWouldServeAnonymousClientsBeyondLoopback()
    {
        // The binder turns any number into an AuthMode; 2 is neither None (refused beyond loopback) nor Jwt.
        var failure = StartupChecks.Failure(new Dictionary<string, string> { ["Auth:Mode"] = "2" }, urls: "http://0.0.0.0:0");
        Assert.That(failure, Is.EqualTo("Auth:Mode: '2' is not one of None, Jwt"));
    }

    [Test]
    public void StartupValidation_RefusesOneValueForAList_WhichTheBinderWouldIgnore()
    {
        var failure = StartupChecks.Failure(new Dictionary<string, string> { ["Server:AllowedOrigins"] = "https://board.campus.example" });
        Assert.That(failure, Is.EqualTo("Server:AllowedOrigins: 'https://board.campus.example' is a list; give its items as Server:AllowedOrigins:0, Server:AllowedOrigins:1, ..."));
    }

    [TestCase("5", "Limits:SlowConsumerWarnSeconds: must be below Limits:SlowConsumerSeconds (5), or 0 to turn flow control off (got 5)")]
    [TestCase("0", null)]
    [TestCase("4", null)]
    public void StartupValidation_RefusesAWarnTime_ThatIsNotBelowTheCloseTime(string warn, string? expected)
    {
        var settings = new Dictionary<string, string> { ["Limits:SlowConsumerSeconds"] = "5", ["Limits:SlowConsumerWarnSeconds"] = warn };
        Assert.That(StartupChecks.Failure(settings), Is.EqualTo(expected));
    }

    [TestCase("5", "Limits:CompactAfterConnections: must be 0 (off) or at least 10 (got 5)")]
    [TestCase("0", null)]
    [TestCase("10", null)]
    public void StartupValidation_RefusesAStormThresholdBelowTen_ButZero(string threshold, string? expected)
    {
        var settings = new Dictionary<string, string> { ["Limits:CompactAfterConnections"] = threshold };
        Assert.That(StartupChecks.Failure(settings), Is.EqualTo(expected));
    }

    [Test]
    public void StartupValidation_NamesAFlowControlIntervalOutOfRange()
    {
        Assert.That(StartupChecks.Failure(new Dictionary<string, string> { ["Limits:SlowConsumerIntervalMs"] = "10" }), Does.StartWith("Limits:SlowConsumerIntervalMs: must be between 50 and 60000"));
    }

    [TestCase("Feed:Simulated:Seed", "")]
    [TestCase("Feed:Simulated:Seed", "42")]
    [TestCase("Auth:Mode", "jwt")]
    [TestCase("Server:AllowMissingOrigin", "False")]
    [TestCase("Server:AllowedOrigins:0", "https://board.campus.example")]
    [TestCase("Feed:Simulated:MaxMovePercent", "1.5e-1")]
    public void StartupValidation_Accepts_ValuesThatConvert(string key, string value)
    {
        var settings = new Dictionary<string, string> { [key] = value };
        if (key.StartsWith("Auth:", StringComparison.Ordinal))
        {
            // Jwt needs its keys; what is checked here is only that 'jwt' is read as the mode.
            settings["Auth:Jwt:Issuer"] = "campus";
            settings["Auth:Jwt:Audience"] = "pricedaemon";
            settings["Auth:Jwt:SigningKey"] = new string('k', 32);
        }

        Assert.That(StartupChecks.Failure(settings), Is.Null);
    }
}
