using PriceDaemon.Benchmarks.EndToEnd;

namespace PriceDaemon.Tests.Benchmarks;

public sealed class DaemonCountersTests
{
    // The shape /metrics serves (see PrometheusExporter): help and type lines, labelled buckets, plain totals.
    private const string Exposition = """
        # HELP pricedaemon_send_latency_seconds Tick receipt to socket write completion, per socket write
        # TYPE pricedaemon_send_latency_seconds histogram
        pricedaemon_send_latency_seconds_bucket{le="0.001"} 293588
        pricedaemon_send_latency_seconds_bucket{le="+Inf"} 1259416
        pricedaemon_send_latency_seconds_sum 3340.302743699962
        pricedaemon_send_latency_seconds_count 1259416
        # HELP pricedaemon_frames_sent_total Price frames written to sockets
        # TYPE pricedaemon_frames_sent_total counter
        pricedaemon_frames_sent_total 2179975
        pricedaemon_socket_writes_total 1260031
        pricedaemon_frames_sent_total_extra 1
        """;

    [Test]
    public void Parse_ReadsThePlainTotals_AndSkipsLabelledSeriesAndComments()
    {
        Assert.That(DaemonCounters.Parse(Exposition), Is.EqualTo(new DaemonCounters(2179975, 1260031, 3340.302743699962, 1259416)));
    }

    [Test]
    public void Parse_GivesNull_WhenASeriesIsMissing()
    {
        Assert.That(DaemonCounters.Parse(Exposition.Replace("pricedaemon_socket_writes_total", "other_total", StringComparison.Ordinal)), Is.Null);
        Assert.That(DaemonCounters.Parse(""), Is.Null);
    }

    [Test]
    public void Since_GivesTheWindow_FramesPerWriteAndMeanLatency()
    {
        var before = new DaemonCounters(1_000, 800, 1.0, 800);
        var after = new DaemonCounters(4_260, 2_800, 5.6, 2_800);

        var window = after.Since(before);

        Assert.That(window.FramesPerWrite, Is.EqualTo(1.63).Within(1e-9));
        Assert.That(window.MeanSendLatencyMs, Is.EqualTo(2.3).Within(1e-9));
        Assert.That(new DaemonCounters(0, 0, 0, 0).FramesPerWrite, Is.Null);
    }

    [Test]
    public void Parse_ReadsTheRuntimesGcCounters_AndSinceGivesTheWindow()
    {
        const string gc = """
            dotnet_gc_collections_total{gc_heap_generation="gen0"} 41
            dotnet_gc_collections_total{gc_heap_generation="gen1"} 7
            dotnet_gc_collections_total{gc_heap_generation="gen2"} 2
            dotnet_gc_heap_total_allocated_bytes_total 900000000
            dotnet_gc_pause_time_seconds_total 0.25
            """;
        const string later = """
            dotnet_gc_collections_total{gc_heap_generation="gen0"} 44
            dotnet_gc_collections_total{gc_heap_generation="gen1"} 7
            dotnet_gc_collections_total{gc_heap_generation="gen2"} 2
            dotnet_gc_heap_total_allocated_bytes_total 945000000
            dotnet_gc_pause_time_seconds_total 0.262
            """;

        var before = DaemonCounters.Parse(Exposition + "\n" + gc)!;
        Assert.That(before.Gc, Is.EqualTo(new GcCounters(41, 7, 2, 900_000_000, 0.25)));
        var window = DaemonCounters.Parse(Exposition + "\n" + later)!.Since(before);
        Assert.That((window.Gc!.Gen0, window.Gc.Gen1, window.Gc.Gen2, window.Gc.AllocatedBytes), Is.EqualTo((3.0, 0.0, 0.0, 45_000_000.0)));
        Assert.That(window.Gc.PauseSeconds, Is.EqualTo(0.012).Within(1e-9));
        Assert.That(DaemonCounters.Parse(Exposition)!.Gc, Is.Null, "no runtime counters exported: no GC figures, not zeros");
    }

    [Test]
    public void Parse_ReadsTheJitTime_AndSinceGivesTheWindowsShare()
    {
        var before = DaemonCounters.Parse(Exposition + "\ndotnet_jit_compilation_time_seconds_total 3.5")!;
        var after = DaemonCounters.Parse(Exposition + "\ndotnet_jit_compilation_time_seconds_total 3.75")!;
        Assert.That(after.Since(before).JitSeconds, Is.EqualTo(0.25).Within(1e-9));
        Assert.That(DaemonCounters.Parse(Exposition)!.JitSeconds, Is.Null, "no runtime counters: no JIT figure, not a zero");
        Assert.That(after.Since(DaemonCounters.Parse(Exposition)!).JitSeconds, Is.Null);
    }
}
