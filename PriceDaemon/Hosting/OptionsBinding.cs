using System.ComponentModel;
using System.Globalization;
using System.Reflection;
using System.Text;
using Microsoft.Extensions.Options;

namespace PriceDaemon.Hosting;

/// <summary>
/// Binds an options class from its configuration section, and first checks that every value present converts to
/// its property's type. The framework binder throws at the first value that does not, and names the key only in the
/// text of its exception; here each such value is a validation failure named by its key, reported with every other
/// failure of the start. Values are converted as the binder converts them (the type's converter, invariant culture),
/// so a section that passes the check binds without surprises.
/// </summary>
internal static class OptionsBinding
{
    /// <summary>
    /// Registers <typeparamref name="T"/> bound from <paramref name="section"/> and validated at start-up: values that
    /// do not convert, data annotations (<see cref="SectionValidator{T}"/>), then <paramref name="extra"/> rules.
    /// </summary>
    public static OptionsBuilder<T> AddSectionOptions<T>(
        this IServiceCollection services, IConfiguration configuration, string section, Func<T, IEnumerable<string>>? extra = null)
        where T : class
    {
        services.AddSingleton<IValidateOptions<T>>(new SectionValidator<T>(section, configuration, extra));
        return services.AddOptions<T>().Configure(options => Bind(configuration, section, options)).ValidateOnStart();
    }

    /// <summary>
    /// The options as the container will hold them, for the few choices made while services are registered (which
    /// feed, whether to publish), before there is a container to ask. A section with a value that does not convert
    /// reads as the defaults: start-up validation then stops the daemon before any service chosen from them runs.
    /// </summary>
    public static T Read<T>(IConfiguration configuration, string section)
        where T : class, new()
    {
        var options = new T();
        Bind(configuration, section, options);
        return options;
    }

    /// <summary>Each value in <paramref name="section"/> that cannot become its property's value, as <c>Section:Key: 'value' is not ...</c>.</summary>
    public static List<string> ConversionFailures(IConfigurationSection section, Type type)
    {
        var failures = new List<string>();
        CheckProperties(section, type, failures);
        return failures;
    }

    private static void Bind(IConfiguration configuration, string section, object options)
    {
        var values = configuration.GetSection(section);
        // All or nothing: a half-bound object is never seen, since the validator refuses this one.
        if (ConversionFailures(values, options.GetType()).Count == 0)
        {
            values.Bind(options);
        }
    }

    private static void CheckProperties(IConfigurationSection section, Type type, List<string> failures)
    {
        // A JSON null is kept as a key without a value (since .NET 10), and the binder sets it: 0 for a number,
        // false for a switch, null for a list or a section. Only a property that may be null takes it.
        var nulls = section.GetChildren().Where(static c => c.Value is null && !c.GetChildren().Any())
            .Select(static c => c.Key).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            // The binder sets public setters and fills the objects of get-only properties; so is each checked.
            if (property.GetIndexParameters().Length == 0 && (property.SetMethod?.IsPublic == true || !IsScalar(property.PropertyType)))
            {
                if (nulls.Contains(property.Name) && new NullabilityInfoContext().Create(property).WriteState != NullabilityState.Nullable)
                {
                    failures.Add($"{section.Path}:{property.Name}: null is not a value here; remove the key to keep its default");
                    continue;
                }

                Check(section.GetSection(property.Name), property.PropertyType, failures);
            }
        }
    }

    private static void Check(IConfigurationSection section, Type type, List<string> failures)
    {
        if (type == typeof(string) || type == typeof(object) || !section.Exists())
        {
            return;
        }

        var value = section.Value;
        if (ElementType(type) is { } element)
        {
            // An empty value is how a JSON file writes an empty list ([]); any other would be dropped without a word.
            if (!string.IsNullOrEmpty(value))
            {
                failures.Add($"{section.Path}: '{Printable(value)}' is a list; give its items as {section.Path}:0, {section.Path}:1, ...");
            }

            foreach (var item in section.GetChildren())
            {
                Check(item, element, failures);
            }

            return;
        }

        if (!IsScalar(type))
        {
            if (!string.IsNullOrEmpty(value))
            {
                failures.Add($"{section.Path}: '{Printable(value)}' is a section; set its keys ({section.Path}:...)");
            }

            CheckProperties(section, type, failures);
            return;
        }

        if (value is not null && Expected(type, value) is { } expected)
        {
            failures.Add($"{section.Path}: '{Printable(value)}' is not {expected}");
        }
    }

    /// <summary>What <paramref name="value"/> should have been, or null when it converts to <paramref name="type"/>.</summary>
    private static string? Expected(Type type, string value)
    {
        var underlying = Nullable.GetUnderlyingType(type);
        if (underlying is not null && value.Length == 0)
        {
            return null; // an empty value (a JSON null) unsets a nullable key
        }

        type = underlying ?? type;
        if (type.IsEnum)
        {
            // By name only: the converter also takes any number, and an undefined mode would slip past every check.
            var names = Enum.GetNames(type);
            return names.Contains(value.Trim(), StringComparer.OrdinalIgnoreCase) ? null : $"one of {string.Join(", ", names)}";
        }

        try
        {
            TypeDescriptor.GetConverter(type).ConvertFromString(null, CultureInfo.InvariantCulture, value);
            return null;
        }
        catch (Exception)
        {
            // Any exception, as the binder catches: converters wrap or throw their own types (Format, Argument, Overflow).
            return Type.GetTypeCode(type) switch
            {
                TypeCode.Byte or TypeCode.SByte or TypeCode.Int16 or TypeCode.UInt16 or TypeCode.Int32 or TypeCode.UInt32
                    or TypeCode.Int64 or TypeCode.UInt64 => "a whole number",
                TypeCode.Single or TypeCode.Double or TypeCode.Decimal => "a number",
                TypeCode.Boolean => "true or false",
                _ => $"a valid {type.Name}",
            };
        }
    }

    /// <summary>A value held in one configuration value rather than in keys under it.</summary>
    private static bool IsScalar(Type type) =>
        TypeDescriptor.GetConverter(Nullable.GetUnderlyingType(type) ?? type).CanConvertFrom(typeof(string));

    /// <summary>The item type of an array or a list; null for anything else (dictionaries are not used by our options).</summary>
    private static Type? ElementType(Type type)
    {
        if (type.IsArray)
        {
            return type.GetElementType();
        }

        return type.IsGenericType && type.GetGenericArguments() is [var item] && typeof(IEnumerable<>).MakeGenericType(item).IsAssignableFrom(type)
            ? item
            : null;
    }

    /// <summary>The value on one line: control characters escaped, long values cut, so the error stays one line.</summary>
    private static string Printable(string value)
    {
        const int Max = 100;
        var text = new StringBuilder();
        foreach (var c in value.Length <= Max ? value : value[..Max])
        {
            text.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when char.IsControl(c) => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }

        return value.Length <= Max ? text.ToString() : $"{text}...";
    }
}
