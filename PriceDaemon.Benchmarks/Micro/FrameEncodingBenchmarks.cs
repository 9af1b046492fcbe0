using System.Text.Json;
using BenchmarkDotNet.Attributes;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Benchmarks.Micro;

/// <summary>Serializing one emitted update: the daemon's hand-written encoder against System.Text.Json, as the original guide did it.</summary>
[MemoryDiagnoser]
public class FrameEncodingBenchmarks
{
    private static readonly JsonSerializerOptions _json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private readonly FrameEncoder _encoder = new(microseconds: true);
    private readonly byte[] _buffer = new byte[512];
    private Instrument _instrument = null!;
    private Tick _tick;

    [GlobalSetup]
    public void Setup()
    {
        _instrument = Universe.Create(1)[0];
        _tick = Universe.Tick(0, 2451.55, 15_000_123);
    }

    [Benchmark(Baseline = true)]
    public byte[] SystemTextJson() => JsonSerializer.SerializeToUtf8Bytes(
        new GuideUpdate("price_update", _instrument.Key, new GuideData(_tick.LastPrice, "2026-01-19T10:30:00.123456Z", 0.03, _tick.Volume)),
        _json);

    [Benchmark]
    public PriceFrame Encode() => _encoder.Encode(_instrument, _tick, 42, 2450.0);

    /// <summary>The encoder's writing alone, without the frame it returns: what serialization costs apart from the one allocation.</summary>
    [Benchmark]
    public int WriteOnly() => FrameEncoder.Write(_buffer, _instrument.KeyJsonUtf8, _tick.LastPrice, _tick.ExchangeTimeUs, true, 0.03, _tick.Volume, 42, PriceSource.Simulated);

    public sealed record GuideUpdate(string Type, string InstrumentKey, GuideData Data);

    public sealed record GuideData(double LastPrice, string Timestamp, double ChangePercent, long Volume);
}
