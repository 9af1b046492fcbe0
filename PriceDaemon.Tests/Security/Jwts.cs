using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace PriceDaemon.Tests.Security;

/// <summary>Mints the tokens the campus backend would, and the ones an attacker would try.</summary>
internal static class Jwts
{
    public const string Issuer = "https://backend.campus.test";
    public const string Audience = "pricedaemon";
    public const string Secret = "a-shared-secret-of-at-least-32-bytes!";

    private static readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };

    /// <summary>Daemon settings for Jwt mode with <see cref="Secret"/> and no clock skew, plus <paramref name="extra"/>.</summary>
    public static Dictionary<string, string> Settings(params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string>
        {
            ["Auth:Mode"] = "Jwt",
            ["Auth:Jwt:Issuer"] = Issuer,
            ["Auth:Jwt:Audience"] = Audience,
            ["Auth:Jwt:SigningKey"] = Secret,
            ["Auth:Jwt:ClockSkewSeconds"] = "0",
        };
        foreach (var (key, value) in extra)
        {
            settings[key] = value;
        }

        return settings;
    }

    public static SigningCredentials SecretCredentials(string secret = Secret) =>
        new(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret)), SecurityAlgorithms.HmacSha256);

    /// <summary>A token valid from <paramref name="notBefore"/> to <paramref name="expires"/>.</summary>
    public static string Mint(
        string subject,
        DateTimeOffset notBefore,
        DateTimeOffset expires,
        SigningCredentials? credentials = null,
        string audience = Audience,
        string issuer = Issuer) =>
        _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            Subject = new ClaimsIdentity([new Claim("sub", subject)]),
            NotBefore = notBefore.UtcDateTime,
            IssuedAt = notBefore.UtcDateTime,
            Expires = expires.UtcDateTime,
            SigningCredentials = credentials ?? SecretCredentials(),
        });

    /// <summary>A token valid for an hour around <paramref name="now"/>.</summary>
    public static string Valid(string subject, DateTimeOffset now, SigningCredentials? credentials = null) =>
        Mint(subject, now.AddMinutes(-1), now.AddHours(1), credentials);

    /// <summary><c>alg: none</c> with every claim right: accepted only by a daemon that trusts the token's own header.</summary>
    public static string Unsigned(string subject, DateTimeOffset now)
    {
        var header = Base64UrlEncoder.Encode("""{"alg":"none","typ":"JWT"}""");
        var payload = Base64UrlEncoder.Encode(
            $$"""{"sub":"{{subject}}","iss":"{{Issuer}}","aud":"{{Audience}}","nbf":{{now.AddMinutes(-1).ToUnixTimeSeconds()}},"exp":{{now.AddHours(1).ToUnixTimeSeconds()}}}""");
        return $"{header}.{payload}.";
    }

    public static SigningCredentials Rs256(out string publicKeyPem)
    {
        var rsa = RSA.Create(2048);
        publicKeyPem = rsa.ExportSubjectPublicKeyInfoPem();
        return new SigningCredentials(new RsaSecurityKey(rsa), SecurityAlgorithms.RsaSha256);
    }

    public static SigningCredentials Es256(out string publicKeyPem)
    {
        var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        publicKeyPem = ec.ExportSubjectPublicKeyInfoPem();
        return new SigningCredentials(new ECDsaSecurityKey(ec), SecurityAlgorithms.EcdsaSha256);
    }
}
