using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using PriceDaemon.Storage;

namespace PriceDaemon.Tests.Storage;

/// <summary>What the storage tests share: file hashes, bad data files, immutable folders.</summary>
internal static class StorageHelpers
{
    public static string Sha256(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>
    /// A file the daemon must refuse: <c>text</c> (not LiteDB, and shorter than a page, which LiteDB itself
    /// would overwrite), <c>random</c> bytes, or <c>damaged</c> (a real price database with its pages trashed).
    /// </summary>
    public static void WriteBadDataFile(string path, string kind)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        switch (kind)
        {
            case "text":
                File.WriteAllText(path, "instrument_key,last_price\nNSE_EQ|INE002A01018,2451.50\n");
                break;
            case "random":
                var bytes = new byte[64 * 1024];
                new Random(7).NextBytes(bytes);
                File.WriteAllBytes(path, bytes);
                break;
            case "damaged":
                var (store, _) = PriceStore.Open(path);
                using (store)
                {
                    store.Write([.. Enumerable.Range(0, 200).Select(i => new StoredPrice($"NSE_EQ|K{i}", 100 + i, i, 1_000_000, 0, 100, i, "live"))]);
                }

                File.Delete(path + ".lock");
                var data = File.ReadAllBytes(path);
                data.AsSpan(8192).Fill(0xAB); // keep the header page, trash every other page
                File.WriteAllBytes(path, data);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }

    /// <summary>
    /// Sets or clears the immutable attribute: as root (CI) permission bits do not stop writes, this does,
    /// even through files the daemon already holds open.
    /// </summary>
    public static void Chattr(string flag, params string[] paths)
    {
        using var process = Process.Start(new ProcessStartInfo("chattr", [flag, .. paths]) { RedirectStandardError = true })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"chattr {flag} failed: {error}");
        }
    }

    /// <summary><c>GET /api/prices</c> as instrument key -> data.</summary>
    public static async Task<Dictionary<string, JsonElement>> GetPricesAsync(HttpClient http)
    {
        using var document = JsonDocument.Parse(await http.GetStringAsync(new Uri("/api/prices", UriKind.Relative)));
        return document.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
    }

    /// <summary>What a restart must preserve of a price (the source becomes <c>stored</c>).</summary>
    public static (double Price, long Volume, string? Timestamp, double Change, long Seq) Essence(JsonElement data) => (
        data.GetProperty("last_price").GetDouble(),
        data.GetProperty("volume").GetInt64(),
        data.GetProperty("timestamp").GetString(),
        data.GetProperty("change_percent").GetDouble(),
        data.GetProperty("seq").GetInt64());
}
