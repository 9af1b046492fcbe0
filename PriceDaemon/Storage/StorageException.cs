namespace PriceDaemon.Storage;

/// <summary>
/// The data file cannot be used (damaged, not a LiteDB file, locked by another daemon, not creatable). The
/// daemon refuses to start with this message as its one line: serving from a file it cannot trust, or
/// sharing it with another writer, would lose or damage prices.
/// </summary>
internal sealed class StorageException : Exception
{
    public StorageException(string message)
        : base(message)
    {
    }

    public StorageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public StorageException()
    {
    }
}
