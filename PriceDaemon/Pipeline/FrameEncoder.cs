using System.Buffers.Text;
using System.Globalization;
using PriceDaemon.Feeds;
using PriceDaemon.Instruments;

namespace PriceDaemon.Pipeline;

/// <summary>
/// Writes <c>price_update</c> frames by hand: straight into a pooled frame's buffer on the throttle's path
/// (<see cref="EncodeInto"/>, no allocation once the pool is warm), or into a scratch buffer copied into one
/// exact-size array for a frame of its own (<see cref="Encode"/>). Not thread-safe; the throttle stage owns one.
/// </summary>
public sealed class FrameEncoder
{
    private static ReadOnlySpan<byte> Prefix => "{\"type\":\"price_update\",\"instrument_key\":\""u8;
    private static ReadOnlySpan<byte> LastPrice => "\",\"data\":{\"last_price\":"u8;
    private static ReadOnlySpan<byte> Timestamp => ",\"timestamp\":\""u8;
    private static ReadOnlySpan<byte> ChangePercent => "\",\"change_percent\":"u8;
    private static ReadOnlySpan<byte> Volume => ",\"volume\":"u8;
    private static ReadOnlySpan<byte> Seq => ",\"seq\":"u8;
    private static ReadOnlySpan<byte> Source => ",\"source\":\""u8;
    private static ReadOnlySpan<byte> End => "\"}}"u8;
    private static ReadOnlySpan<byte> StaleEnd => ",\"stale\":true}}"u8;
    private static ReadOnlySpan<byte> ReceivedAt => ",\"received_at\":\""u8;

    private readonly bool _microseconds;
    private byte[] _scratch = new byte[512];

    /// <param name="microseconds">Write timestamps with 6 fractional digits instead of 3 (latency measurement).</param>
    public FrameEncoder(bool microseconds = false)
    {
        _microseconds = microseconds;
    }

    /// <param name="stale">Label the price <c>"stale": true</c> (restored from storage).</param>
    public PriceFrame Encode(Instrument instrument, in Tick tick, long seq, double previousClose, bool stale = false)
    {
        var change = ChangePercentOf(tick.LastPrice, previousClose);
        var needed = 256 + instrument.KeyJsonUtf8.Length;
        if (_scratch.Length < needed)
        {
            _scratch = new byte[needed];
        }

        var length = Write(_scratch, instrument.KeyJsonUtf8, tick.LastPrice, tick.ExchangeTimeUs, _microseconds, change, tick.Volume, seq, tick.Source);
        var utf8 = _scratch.AsSpan(0, length).ToArray();
        var frame = new PriceFrame(instrument.Id, seq, tick.LastPrice, tick.Volume, tick.ExchangeTimeUs, change, previousClose, tick.Source, false, tick.ReceivedTimestamp, utf8);
        return stale ? WithStale(frame) : frame;
    }

    /// <summary>
    /// Refills <paramref name="frame"/> (new from the pool, or past its grace period) with this update; its buffer is
    /// kept and grows only for a longer instrument key than it held.
    /// </summary>
    internal void EncodeInto(PriceFrame frame, Instrument instrument, in Tick tick, long seq, double previousClose)
    {
        var change = ChangePercentOf(tick.LastPrice, previousClose);
        var needed = 256 + instrument.KeyJsonUtf8.Length;
        var buffer = frame.Buffer.Length >= needed ? frame.Buffer : new byte[needed];
        var length = Write(buffer, instrument.KeyJsonUtf8, tick.LastPrice, tick.ExchangeTimeUs, _microseconds, change, tick.Volume, seq, tick.Source);
        frame.Fill(instrument.Id, tick, seq, change, previousClose, buffer, length);
    }

    private static double ChangePercentOf(double price, double previousClose)
    {
        var change = previousClose > 0 ? Math.Round((price - previousClose) / previousClose * 100, 2) : 0;
        return change == 0 ? 0 : change; // never "-0"
    }

    /// <summary>A copy of <paramref name="frame"/> whose data ends with <c>"stale": true</c>; same seq, same price.</summary>
    internal static PriceFrame WithStale(PriceFrame frame)
    {
        var utf8 = StaleCopy(frame.Utf8.Span);
        return new PriceFrame(
            frame.InstrumentId, frame.Seq, frame.LastPrice, frame.Volume, frame.TimestampUs, frame.ChangePercent,
            frame.PreviousClose, frame.Source, true, frame.ReceivedTimestamp, utf8);
    }

    /// <summary>
    /// The bytes of <paramref name="frame"/> with <c>"received_at"</c> (the daemon's receive time, ISO 8601 UTC with
    /// microseconds) as the last field of data: for sockets that asked for timing, built once per frame on first need.
    /// </summary>
    internal static byte[] WithReceivedAt(PriceFrame frame, long receivedUnixUs)
    {
        // Every frame ends with the two closing braces of data and the root; the field goes just before them.
        var body = frame.Utf8.Span[..^2];
        Span<byte> field = stackalloc byte[64];
        ReceivedAt.CopyTo(field);
        var w = ReceivedAt.Length;
        w += WriteTimestamp(receivedUnixUs, microseconds: true, field[w..]);
        field[w++] = (byte)'"';
        var utf8 = new byte[body.Length + w + 2];
        body.CopyTo(utf8);
        field[..w].CopyTo(utf8.AsSpan(body.Length));
        "}}"u8.CopyTo(utf8.AsSpan(body.Length + w));
        return utf8;
    }

    /// <summary>
    /// A copy of a market-data frame (price, depth, book) with <c>"stale": true</c> added to its data. Every such frame
    /// ends with the two closing braces of data and the root; the label goes just before them.
    /// </summary>
    internal static byte[] StaleCopy(ReadOnlySpan<byte> frame)
    {
        var body = frame[..^2];
        var utf8 = new byte[body.Length + StaleEnd.Length];
        body.CopyTo(utf8);
        StaleEnd.CopyTo(utf8.AsSpan(body.Length));
        return utf8;
    }

    internal static int Write(Span<byte> buffer, ReadOnlySpan<byte> keyJson, double price, long timeUs, bool microseconds, double change, long volume, long seq, PriceSource source)
    {
        var w = 0;
        Append(buffer, ref w, Prefix);
        Append(buffer, ref w, keyJson);
        Append(buffer, ref w, LastPrice);
        w += FormatNumber(price, buffer[w..]);
        Append(buffer, ref w, Timestamp);
        w += WriteTimestamp(timeUs, microseconds, buffer[w..]);
        Append(buffer, ref w, ChangePercent);
        w += FormatNumber(change, buffer[w..]);
        Append(buffer, ref w, Volume);
        Utf8Formatter.TryFormat(volume, buffer[w..], out var n);
        w += n;
        Append(buffer, ref w, Seq);
        Utf8Formatter.TryFormat(seq, buffer[w..], out n);
        w += n;
        Append(buffer, ref w, Source);
        Append(buffer, ref w, SourceName(source));
        Append(buffer, ref w, End);
        return w;
    }

    public static ReadOnlySpan<byte> SourceName(PriceSource source) => source switch
    {
        PriceSource.Live => "live"u8,
        PriceSource.Simulated => "simulated"u8,
        PriceSource.Replay => "replay"u8,
        _ => "stored"u8,
    };

    /// <summary>Shortest round-trip form, always valid JSON (prices are validated finite at the edge).</summary>
    internal static int FormatNumber(double value, Span<byte> destination)
    {
        value.TryFormat(destination, out var written, default, CultureInfo.InvariantCulture);
        return written;
    }

    /// <summary>ISO 8601 UTC with milliseconds, e.g. <c>2026-01-19T10:30:00.123Z</c>, or microseconds when asked.</summary>
    internal static int WriteTimestamp(long unixUs, bool microseconds, Span<byte> d)
    {
        var time = DateTime.UnixEpoch.AddTicks(unixUs * 10);
        var (year, month, day) = time;
        var msOfDay = (int)(time.Ticks / TimeSpan.TicksPerMillisecond % 86_400_000);
        Digits(d[..4], year);
        d[4] = (byte)'-';
        Digits(d.Slice(5, 2), month);
        d[7] = (byte)'-';
        Digits(d.Slice(8, 2), day);
        d[10] = (byte)'T';
        Digits(d.Slice(11, 2), msOfDay / 3_600_000);
        d[13] = (byte)':';
        Digits(d.Slice(14, 2), msOfDay / 60_000 % 60);
        d[16] = (byte)':';
        Digits(d.Slice(17, 2), msOfDay / 1000 % 60);
        d[19] = (byte)'.';
        Digits(d.Slice(20, 3), msOfDay % 1000);
        if (microseconds)
        {
            Digits(d.Slice(23, 3), (int)(((unixUs % 1000) + 1000) % 1000));
            d[26] = (byte)'Z';
            return 27;
        }

        d[23] = (byte)'Z';
        return 24;
    }

    private static void Digits(Span<byte> d, int value)
    {
        for (var i = d.Length - 1; i >= 0; i--)
        {
            d[i] = (byte)('0' + (value % 10));
            value /= 10;
        }
    }

    internal static void Append(Span<byte> buffer, ref int w, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(buffer[w..]);
        w += bytes.Length;
    }
}
