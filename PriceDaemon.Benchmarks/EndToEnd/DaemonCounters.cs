using System.Globalization;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>
/// The daemon's own send counters, read from its <c>GET /metrics</c> before and after the measured window:
/// how many frames each socket write carried, and how long the oldest frame of each write had spent inside
/// the daemon (tick receipt to the write; one sample per write, so an upper bound on a frame's time there). Together with the harness's end-to-end figures they say whether latency
/// and CPU went to queueing in the daemon, to the writes themselves, or to the client side.
/// </summary>
internal sealed record DaemonCounters(double FramesSent, double SocketWrites, double SendLatencySeconds, double SendLatencyCount)
{
    private const string FramesSentName = "pricedaemon_frames_sent_total";
    private const string SocketWritesName = "pricedaemon_socket_writes_total";
    private const string LatencySumName = "pricedaemon_send_latency_seconds_sum";
    private const string LatencyCountName = "pricedaemon_send_latency_seconds_count";

    private const string CollectionsName = "dotnet_gc_collections_total";
    private const string AllocatedName = "dotnet_gc_heap_total_allocated_bytes_total";
    private const string PauseName = "dotnet_gc_pause_time_seconds_total";
    private const string JitName = "dotnet_jit_compilation_time_seconds_total";

    /// <summary>The runtime's own GC counters (System.Runtime meter); null where the daemon did not export them.</summary>
    public GcCounters? Gc { get; init; }

    /// <summary>
    /// Time the runtime spent compiling methods (tiered re-compilation goes on for a while after start): CPU in the
    /// window that is no frame's, so a report can tell start-up work from per-frame work.
    /// </summary>
    public double? JitSeconds { get; init; }

    public double? FramesPerWrite => SocketWrites > 0 ? FramesSent / SocketWrites : null;

    public double? MeanSendLatencyMs => SendLatencyCount > 0 ? SendLatencySeconds * 1000 / SendLatencyCount : null;

    public DaemonCounters Since(DaemonCounters earlier) => new(
        FramesSent - earlier.FramesSent,
        SocketWrites - earlier.SocketWrites,
        SendLatencySeconds - earlier.SendLatencySeconds,
        SendLatencyCount - earlier.SendLatencyCount)
    {
        Gc = Gc is { } now && earlier.Gc is { } then ? now.Since(then) : null,
        JitSeconds = JitSeconds is { } jit && earlier.JitSeconds is { } before ? jit - before : null,
    };

    /// <summary>Null when the server has no metrics endpoint (the baseline) or lacks the send counters.</summary>
    public static async Task<DaemonCounters?> ScrapeAsync(HttpClient http, Uri baseUri)
    {
        try
        {
            using var response = await http.GetAsync(new Uri(baseUri, "/metrics")).ConfigureAwait(false);
            return response.IsSuccessStatusCode ? Parse(await response.Content.ReadAsStringAsync().ConfigureAwait(false)) : null;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            // A diagnostic, not a result: the run's own figures stand without it.
            return null;
        }
    }

    /// <summary>Reads the four samples from Prometheus text exposition; null unless all four are there.</summary>
    public static DaemonCounters? Parse(string exposition)
    {
        double? frames = null, writes = null, latencySum = null, latencyCount = null;
        double? gen0 = null, gen1 = null, gen2 = null, allocated = null, pause = null, jit = null;
        foreach (var line in exposition.AsSpan().EnumerateLines())
        {
            if (line.IsEmpty || line[0] == '#')
            {
                continue;
            }

            var space = line.IndexOf(' ');
            if (space <= 0 || !double.TryParse(line[(space + 1)..].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                continue;
            }

            // Series with labels (name{...}) are not the plain totals read here.
            switch (line[..space])
            {
                case FramesSentName: frames = value; break;
                case SocketWritesName: writes = value; break;
                case LatencySumName: latencySum = value; break;
                case LatencyCountName: latencyCount = value; break;
                case AllocatedName: allocated = value; break;
                case PauseName: pause = value; break;
                case JitName: jit = value; break;
                case var name when name.StartsWith(CollectionsName + "{", StringComparison.Ordinal):
                    if (name.Contains("\"gen0\"", StringComparison.Ordinal))
                    {
                        gen0 = value;
                    }
                    else if (name.Contains("\"gen1\"", StringComparison.Ordinal))
                    {
                        gen1 = value;
                    }
                    else if (name.Contains("\"gen2\"", StringComparison.Ordinal))
                    {
                        gen2 = value;
                    }

                    break;
            }
        }

        if (frames is not { } f || writes is not { } w || latencySum is not { } s || latencyCount is not { } c)
        {
            return null;
        }

        // A generation that has not collected yet has no sample: it counts as 0.
        return new DaemonCounters(f, w, s, c)
        {
            Gc = allocated is { } bytes ? new GcCounters(gen0 ?? 0, gen1 ?? 0, gen2 ?? 0, bytes, pause ?? 0) : null,
            JitSeconds = jit,
        };
    }
}

/// <summary>Collections per generation, bytes allocated and time paused: over the measured window once subtracted.</summary>
internal sealed record GcCounters(double Gen0, double Gen1, double Gen2, double AllocatedBytes, double PauseSeconds)
{
    public GcCounters Since(GcCounters earlier) =>
        new(Gen0 - earlier.Gen0, Gen1 - earlier.Gen1, Gen2 - earlier.Gen2, AllocatedBytes - earlier.AllocatedBytes, PauseSeconds - earlier.PauseSeconds);
}
