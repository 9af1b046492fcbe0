using System.Reflection;
using Microsoft.Extensions.Configuration;
using PriceDaemon.Feeds;
using PriceDaemon.Hosting;

namespace PriceDaemon.Tests.Hosting;

/// <summary>
/// The conversion check agrees with the framework binder: a section it passes binds without an exception, for every
/// key of every options section and values of every kind. An exception that slipped through would stop the daemon
/// with a stack trace instead of the one line naming the key.
/// </summary>
public sealed class OptionsBindingTests
{
    private static readonly string[] Values =
    [
        "", " ", "0", "-1", " 7 ", "1.5", "1e3", "0x10", "#10", "99999999999", "NaN", "-Infinity", "true", "False", "yes",
        "None", "jwt", "2", "None, Jwt", "null", "x", "\n",
    ];

    [Test]
    public void ConversionFailures_NoneFound_MeansTheBinderBindsWithoutThrowing()
    {
        var checkedKeys = 0;
        var problems = new List<string>();
        foreach (var type in OptionsTypes())
        {
            var section = (string)type.GetField("Section")!.GetValue(null)!;
            foreach (var key in ScalarKeys(type, section))
            {
                checkedKeys++;
                foreach (var value in Values)
                {
                    var configuration = new ConfigurationBuilder().AddInMemoryCollection([new(key, value)]).Build();
                    if (OptionsBinding.ConversionFailures(configuration.GetSection(section), type).Count > 0)
                    {
                        continue;
                    }

                    try
                    {
                        configuration.GetSection(section).Bind(Activator.CreateInstance(type)!);
                    }
                    catch (InvalidOperationException ex)
                    {
                        problems.Add($"{key}='{value}': passed the check, but {ex.Message}");
                    }
                }
            }
        }

        Assert.That(checkedKeys, Is.GreaterThan(50));
        Assert.That(problems, Is.Empty);
    }

    [TestCase("Limits", "IdleTimeoutSeconds", typeof(PriceDaemon.Sockets.LimitsOptions))]
    [TestCase("Server", "AllowedOrigins", typeof(PriceDaemon.Security.ServerOptions))]
    [TestCase("Auth", "Jwt", typeof(PriceDaemon.Security.AuthOptions))]
    public void ConversionFailures_NameAJsonNull_WhereTheBinderWouldSetZeroOrNull(string section, string key, Type type)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new($"{section}:{key}", null)]).Build();
        Assert.That(OptionsBinding.ConversionFailures(configuration.GetSection(section), type), Is.EqualTo(new[] { $"{section}:{key}: null is not a value here; remove the key to keep its default" }));
    }

    [Test]
    public void ConversionFailures_TakeAnEnumNameWithSpaces_AsTheBinderDoes()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new("Auth:Mode", " Jwt ")]).Build();
        Assert.That(OptionsBinding.ConversionFailures(configuration.GetSection("Auth"), typeof(PriceDaemon.Security.AuthOptions)), Is.Empty);
    }

    [Test]
    public void ConversionFailures_NameTheKeyWithItsIndex_ForAnItemOfAList()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new("Feed:Upstox:AlwaysSubscribe:0", "NSE_EQ|A"), new("Feed:Simulated:Seed", "seven")]).Build();
        var failures = OptionsBinding.ConversionFailures(configuration.GetSection("Feed"), typeof(FeedOptions));
        Assert.That(failures, Is.EqualTo(new[] { "Feed:Simulated:Seed: 'seven' is not a whole number" }));
    }

    /// <summary>Every options class of the daemon: the public ones with a <c>Section</c> constant.</summary>
    private static IEnumerable<Type> OptionsTypes() =>
        typeof(Program).Assembly.GetTypes().Where(static t => t.IsClass && t.GetField("Section", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true });

    /// <summary>The configuration key of every property that holds one value, nested sections included.</summary>
    private static IEnumerable<string> ScalarKeys(Type type, string prefix)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var key = $"{prefix}:{property.Name}";
            var propertyType = property.PropertyType;
            if (propertyType.IsClass && propertyType != typeof(string) && !propertyType.IsArray && !propertyType.IsGenericType)
            {
                foreach (var nested in ScalarKeys(propertyType, key))
                {
                    yield return nested;
                }
            }
            else
            {
                yield return propertyType.IsArray || propertyType.IsGenericType && !propertyType.IsValueType ? $"{key}:0" : key;
            }
        }
    }
}
