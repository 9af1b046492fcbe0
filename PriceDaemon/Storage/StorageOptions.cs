using System.ComponentModel.DataAnnotations;

namespace PriceDaemon.Storage;

public sealed class StorageOptions
{
    public const string Section = "Storage";

    /// <summary>
    /// The LiteDB file of last known prices; relative paths resolve against the working directory. Its folder
    /// is created if missing, and <c>PATH.lock</c> beside it keeps a second daemon off the same file.
    /// </summary>
    [Required]
    [MinLength(1)]
    public string Path { get; set; } = "data/prices.db";

    /// <summary>
    /// How often changed prices are written, in one transaction (default 1000 ms). This is the most a kill -9
    /// can lose; a shorter interval costs more small writes.
    /// </summary>
    [Range(10, 3_600_000)]
    public int FlushIntervalMs { get; set; } = 1000;
}
