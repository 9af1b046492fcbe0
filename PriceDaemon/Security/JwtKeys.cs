using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.IdentityModel.Tokens;

namespace PriceDaemon.Security;

/// <summary>The one key and algorithm that tokens must be signed with. Exactly one: no algorithm confusion.</summary>
internal sealed record JwtKey(SecurityKey Key, string Algorithm)
{
    /// <summary>HS256 keys shorter than this are brute-forceable offline from a single token.</summary>
    public const int MinSecretBytes = 32;

    /// <summary>Loads the key named by <paramref name="options"/>; throws <see cref="InvalidDataException"/> naming the key at fault.</summary>
    public static JwtKey Load(JwtOptions options)
    {
        if (!string.IsNullOrEmpty(options.SigningKey))
        {
            return new JwtKey(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(options.SigningKey)), SecurityAlgorithms.HmacSha256);
        }

        string pem;
        try
        {
            pem = File.ReadAllText(options.PublicKeyPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"Auth:Jwt:PublicKeyPath: cannot read '{options.PublicKeyPath}': {ex.Message}", ex);
        }

        try
        {
            return FromPem(pem);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            throw new InvalidDataException($"Auth:Jwt:PublicKeyPath: '{options.PublicKeyPath}' holds no RSA or EC public key in PEM form", ex);
        }
    }

    private static JwtKey FromPem(string pem)
    {
        if (pem.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal))
        {
            using var certificate = X509Certificate2.CreateFromPem(pem);
            if (certificate.GetRSAPublicKey() is { } certificateRsa)
            {
                return new JwtKey(new RsaSecurityKey(certificateRsa), SecurityAlgorithms.RsaSha256);
            }

            return Ec(certificate.GetECDsaPublicKey() ?? throw new CryptographicException("the certificate's key is neither RSA nor EC"));
        }

        var rsa = RSA.Create();
        try
        {
            rsa.ImportFromPem(pem);
            return new JwtKey(new RsaSecurityKey(rsa), SecurityAlgorithms.RsaSha256);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            // Not RSA: try EC below.
            rsa.Dispose();
        }

        var ec = ECDsa.Create();
        ec.ImportFromPem(pem);
        return Ec(ec);
    }

    private static JwtKey Ec(ECDsa key) => key.KeySize switch
    {
        256 => new JwtKey(new ECDsaSecurityKey(key), SecurityAlgorithms.EcdsaSha256),
        384 => new JwtKey(new ECDsaSecurityKey(key), SecurityAlgorithms.EcdsaSha384),
        521 => new JwtKey(new ECDsaSecurityKey(key), SecurityAlgorithms.EcdsaSha512),
        _ => throw new CryptographicException($"unsupported EC key size {key.KeySize}"),
    };
}
