using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using Microsoft.Extensions.Options;

namespace PriceDaemon.Hosting;

/// <summary>
/// Validates an options class and its nested option objects: first that every configured value converts to its
/// property's type (<see cref="OptionsBinding"/>), then their data annotations. Each failure is named by its
/// configuration key (<c>Feed:Simulated:MinIntervalMs: ...</c>), which is what an operator has to edit. Cross-field
/// rules come in as an extra function.
/// </summary>
internal sealed class SectionValidator<T> : IValidateOptions<T>
    where T : class
{
    private readonly string _section;
    private readonly IConfiguration _configuration;
    private readonly Func<T, IEnumerable<string>>? _extra;

    public SectionValidator(string section, IConfiguration configuration, Func<T, IEnumerable<string>>? extra = null)
    {
        _section = section;
        _configuration = configuration;
        _extra = extra;
    }

    public ValidateOptionsResult Validate(string? name, T options)
    {
        var failures = OptionsBinding.ConversionFailures(_configuration.GetSection(_section), typeof(T));
        if (failures.Count > 0)
        {
            // The section was not bound (the options hold their defaults): the other rules would judge the defaults.
            return ValidateOptionsResult.Fail(failures);
        }

        Collect(options, _section, failures);
        if (_extra is not null)
        {
            failures.AddRange(_extra(options).Select(f => $"{_section}:{f}"));
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void Collect(object target, string prefix, List<string> failures)
    {
        foreach (var property in target.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var value = property.GetValue(target);
            var key = $"{prefix}:{property.Name}";
            var context = new ValidationContext(target) { MemberName = property.Name, DisplayName = property.Name };
            var results = new List<ValidationResult>();
            if (!Validator.TryValidateProperty(value, context, results))
            {
                failures.AddRange(results.Select(r => $"{key}: {Describe(r.ErrorMessage, property.Name, value)}"));
            }

            if (value is not null && property.PropertyType.IsClass && property.PropertyType != typeof(string) && value is not IEnumerable)
            {
                Collect(value, key, failures);
            }
        }
    }

    private static string Describe(string? message, string name, object? value)
    {
        // "The field X must be between 1 and 10." reads better as "must be between 1 and 10 (got 0)".
        var text = (message ?? "is invalid").Replace($"The field {name} ", "", StringComparison.Ordinal)
            .Replace($"The {name} field ", "", StringComparison.Ordinal)
            .TrimEnd('.');
        return value is null ? text : $"{text} (got {value})";
    }
}
