using System.ComponentModel.DataAnnotations;

namespace PriceDaemon.Sockets;

public sealed class LimitsOptions
{
    public const string Section = "Limits";

    /// <summary>Instruments one connection may subscribe to (the original guide's 100). Also bounds each socket's send queue.</summary>
    [Range(1, 100_000)]
    public int MaxSubscriptionsPerConnection { get; set; } = 100;

    /// <summary>Largest client message; a bigger one closes the socket with 1009.</summary>
    [Range(256, 16 * 1024 * 1024)]
    public int MaxMessageBytes { get; set; } = 16 * 1024;

    /// <summary>The server pings this often and drops a peer that does not answer within the same time. 0 turns pings off.</summary>
    [Range(0, 3600)]
    public int KeepAliveSeconds { get; set; } = 30;

    /// <summary>A socket whose write has not completed for this long is closed as a slow consumer.</summary>
    [Range(1, 3600)]
    public int SlowConsumerSeconds { get; set; } = 10;

    /// <summary>How long a close handshake may take before the connection is aborted.</summary>
    [Range(1, 60)]
    public int CloseTimeoutSeconds { get; set; } = 2;
}
