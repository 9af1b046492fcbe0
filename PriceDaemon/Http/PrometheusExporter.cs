using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Numerics;
using System.Text;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Http;

/// <summary>
/// Renders the daemon's <see cref="System.Diagnostics.Metrics"/> meters in the Prometheus text format for
/// <c>GET /metrics</c>. Observable instruments (all of the daemon's counters) are read at scrape time, so they
/// cost nothing between scrapes. Recorded instruments (the latency histograms, the runtime's exception
/// counter) take no lock: each instrument's state is made when the instrument is published and handed to the
/// listener, a measurement bumps its bucket and sum with Interlocked, and a scrape reads them without
/// stopping a writer. Only scrapes are serialized among themselves.
/// </summary>
internal sealed class PrometheusExporter : IDisposable
{
    // Our pipeline, and the runtime's own (CPU, memory, GC, thread pool) that .NET publishes itself.
    private static readonly HashSet<string> _meters = [PipelineMetrics.MeterName, "System.Runtime"];

    // Latency buckets in seconds, 100 µs to 2.5 s: the daemon's budgets sit between 2 and 50 ms.
    private static readonly double[] _buckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

    private readonly MeterListener _listener = new();
    // Observable instruments report into their state from inside RecordObservableInstruments, on the scraping
    // thread; two scrapes at once would interleave those reports. Recorders never take this.
    private readonly Lock _scrape = new();
    private readonly ConcurrentDictionary<Instrument, InstrumentState> _instruments = new();

    /// <summary>The histogram bucket bounds, for other exporters of the same histograms (a copy).</summary>
    public static double[] Buckets => [.. _buckets];

    public PrometheusExporter(IMeterFactory meterFactory)
    {
        // The listener hears every meter in the process. The daemon's own are the ones its host's factory made
        // (a second host in the same process, as in the tests, has meters of the same name); the runtime's
        // meter is the process's, unscoped.
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            var meter = instrument.Meter;
            if (_meters.Contains(meter.Name) && (meter.Scope is null || ReferenceEquals(meter.Scope, meterFactory)))
            {
                var state = new InstrumentState(instrument);
                _instruments[instrument] = state;
                listener.EnableMeasurementEvents(instrument, state);
            }
        };
        // A disposed meter's instruments stop reporting; their last values would otherwise be served forever.
        _listener.MeasurementsCompleted = (instrument, _) => _instruments.TryRemove(instrument, out InstrumentState? _);
        _listener.SetMeasurementEventCallback<long>(static (_, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>(static (_, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<double>(static (_, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.Start();
    }

    public string Scrape()
    {
        lock (_scrape)
        {
            _listener.RecordObservableInstruments();
            var instruments = _instruments.Values.Where(static i => i.HasSeries).ToList();
            var text = new StringBuilder();
            foreach (var instrument in instruments.Where(static i => i.Kind == Kind.Histogram).OrderBy(static i => i.Name, StringComparer.Ordinal))
            {
                RenderHistogram(text, instrument);
            }

            foreach (var instrument in instruments.Where(static i => i.Kind != Kind.Histogram)
                .OrderBy(static i => i.MeterName, StringComparer.Ordinal).ThenBy(static i => i.Name, StringComparer.Ordinal))
            {
                RenderValues(text, instrument);
            }

            return text.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();

    private static void RenderHistogram(StringBuilder text, InstrumentState instrument)
    {
        Header(text, instrument, "histogram");
        foreach (var (labels, series) in instrument.Series())
        {
            var prefix = labels.Length == 0 ? "{" : labels[..^1] + ",";
            long cumulative = 0;
            for (var i = 0; i <= _buckets.Length; i++)
            {
                cumulative += series.Count(i);
                var le = i < _buckets.Length ? _buckets[i].ToString("R", CultureInfo.InvariantCulture) : "+Inf";
                text.Append(instrument.Name).Append("_bucket").Append(prefix).Append("le=\"").Append(le).Append("\"} ").Append(cumulative).Append('\n');
            }

            // The sum is read after the buckets, so a measurement that lands meanwhile shows in the sum and not
            // yet in the count; the next scrape has both. Prometheus expects no atomic snapshot of the two.
            text.Append(instrument.Name).Append("_sum").Append(labels).Append(' ').Append(Format(series.Value)).Append('\n');
            text.Append(instrument.Name).Append("_count").Append(labels).Append(' ').Append(cumulative).Append('\n');
        }
    }

    private static void RenderValues(StringBuilder text, InstrumentState instrument)
    {
        Header(text, instrument, instrument.Kind == Kind.Counter ? "counter" : "gauge");
        foreach (var (labels, series) in instrument.Series())
        {
            text.Append(instrument.Name).Append(labels).Append(' ').Append(Format(series.Value)).Append('\n');
        }
    }

    private static void Header(StringBuilder text, InstrumentState instrument, string type)
    {
        if (instrument.Help is { Length: > 0 } help)
        {
            text.Append("# HELP ").Append(instrument.Name).Append(' ').Append(help).Append('\n');
        }

        text.Append("# TYPE ").Append(instrument.Name).Append(' ').Append(type).Append('\n');
    }

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private enum Kind
    {
        Counter,
        Gauge,
        Histogram,
    }

    /// <summary>How one measurement is kept: summed (counters), replaced (observed values, gauges) or bucketed.</summary>
    private enum Aggregation
    {
        Sum,
        LastValue,
        Histogram,
    }

    /// <summary>
    /// One instrument: its Prometheus name, type and series. The untagged series (every instrument of the
    /// daemon's own) is one field; tagged series sit in a concurrent map that a known tag set reads without a lock.
    /// </summary>
    private sealed class InstrumentState
    {
        private readonly Aggregation _aggregation;
        private readonly ConcurrentDictionary<string, Series> _tagged = new(StringComparer.Ordinal);
        private Series? _untagged;

        public InstrumentState(Instrument instrument)
        {
            var type = instrument.GetType().Name;
            var histogram = type.StartsWith("Histogram", StringComparison.Ordinal);
            // Up-down counters are gauges in Prometheus: they go down.
            Kind = histogram ? Kind.Histogram
                : type.StartsWith("Counter", StringComparison.Ordinal) || type.StartsWith("ObservableCounter", StringComparison.Ordinal) ? Kind.Counter
                : Kind.Gauge;
            // An observable instrument reports its current total; a recorded counter reports increments, and
            // a recorded gauge its new value.
            _aggregation = histogram ? Aggregation.Histogram
                : instrument.IsObservable || type.StartsWith("Gauge", StringComparison.Ordinal) ? Aggregation.LastValue
                : Aggregation.Sum;
            MeterName = instrument.Meter.Name;
            Name = MetricName(instrument, Kind == Kind.Counter);
            Help = instrument.Description?.Replace("\n", " ", StringComparison.Ordinal);
        }

        public Kind Kind { get; }

        public string MeterName { get; }

        public string Name { get; }

        public string? Help { get; }

        public bool HasSeries => Volatile.Read(ref _untagged) is not null || !_tagged.IsEmpty;

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var series = tags.IsEmpty
                ? Volatile.Read(ref _untagged) ?? Untagged()
                : _tagged.GetOrAdd(Labels(tags), static (_, aggregation) => new Series(aggregation), _aggregation);
            series.Add(value, _aggregation);
        }

        /// <summary>Series ordered by their labels, the untagged one first.</summary>
        public IEnumerable<(string Labels, Series Series)> Series()
        {
            if (Volatile.Read(ref _untagged) is { } untagged)
            {
                yield return ("", untagged);
            }

            foreach (var (labels, series) in _tagged.OrderBy(static e => e.Key, StringComparer.Ordinal))
            {
                yield return (labels, series);
            }
        }

        // A series appears with its first measurement, as Prometheus clients do for labelled series.
        private Series Untagged()
        {
            var created = new Series(_aggregation);
            return Interlocked.CompareExchange(ref _untagged, created, null) ?? created;
        }

        private static string MetricName(Instrument instrument, bool isCounter)
        {
            var name = new StringBuilder(instrument.Name.Length + 16);
            foreach (var c in instrument.Name)
            {
                name.Append(char.IsAsciiLetterOrDigit(c) ? c : '_');
            }

            if (instrument.Unit is "s" or "By")
            {
                name.Append(instrument.Unit == "s" ? "_seconds" : "_bytes");
            }

            return isCounter ? name.Append("_total").ToString() : name.ToString();
        }

        private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var labels = new StringBuilder("{");
            foreach (var (key, value) in tags)
            {
                if (labels.Length > 1)
                {
                    labels.Append(',');
                }

                foreach (var c in key)
                {
                    labels.Append(char.IsAsciiLetterOrDigit(c) ? c : '_');
                }

                labels.Append("=\"").Append(Convert.ToString(value, CultureInfo.InvariantCulture)?
                    .Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('"');
            }

            return labels.Append('}').ToString();
        }
    }

    /// <summary>
    /// One series. A counter's or gauge's value is a double kept as its bits, so that it can be added to with a
    /// compare-and-swap. A histogram keeps its bucket counts and sum once per processor, each set on cache lines
    /// of its own: send threads on different cores then never write the same line, and a scrape adds the sets up.
    /// </summary>
    private sealed class Series
    {
        // Per stripe: the bucket counts, then the sum's bits; padded to 256 bytes so that no two stripes' used
        // 128 bytes share a cache line (or the pair the adjacent-line prefetcher fetches), however the array lies.
        private const int StripeLongs = 32;
        private static readonly int _sumSlot = _buckets.Length + 1;
        private static readonly int _stripes = (int)Math.Min(64, BitOperations.RoundUpToPowerOf2((uint)Environment.ProcessorCount));

        private readonly long[]? _cells;
        private long _valueBits;

        public Series(Aggregation aggregation)
        {
            _cells = aggregation == Aggregation.Histogram ? new long[_stripes * StripeLongs] : null;
        }

        /// <summary>A counter's or gauge's value, or a histogram's sum.</summary>
        public double Value
        {
            get
            {
                if (_cells is null)
                {
                    return BitConverter.Int64BitsToDouble(Volatile.Read(ref _valueBits));
                }

                var sum = 0.0;
                for (var stripe = 0; stripe < _stripes; stripe++)
                {
                    sum += BitConverter.Int64BitsToDouble(Volatile.Read(ref _cells[(stripe * StripeLongs) + _sumSlot]));
                }

                return sum;
            }
        }

        /// <summary>A histogram's count in one bucket over every stripe (not cumulative); the last is above every bound (+Inf).</summary>
        public long Count(int bucket)
        {
            long count = 0;
            for (var stripe = 0; stripe < _stripes; stripe++)
            {
                count += Volatile.Read(ref _cells![(stripe * StripeLongs) + bucket]);
            }

            return count;
        }

        public void Add(double value, Aggregation aggregation)
        {
            if (aggregation == Aggregation.LastValue)
            {
                Volatile.Write(ref _valueBits, BitConverter.DoubleToInt64Bits(value));
            }
            else if (_cells is { } cells)
            {
                // Interlocked still: two threads can share a processor between preemptions, rarely at once.
                var stripe = (Thread.GetCurrentProcessorId() & (_stripes - 1)) * StripeLongs;
                // le is inclusive: a value equal to a bound counts in that bound's bucket.
                var bucket = Array.BinarySearch(_buckets, value);
                Interlocked.Increment(ref cells[stripe + (bucket >= 0 ? bucket : ~bucket)]);
                AddTo(ref cells[stripe + _sumSlot], value);
            }
            else
            {
                AddTo(ref _valueBits, value);
            }
        }

        private static void AddTo(ref long bits, double value)
        {
            var seen = Volatile.Read(ref bits);
            while (true)
            {
                var current = seen;
                seen = Interlocked.CompareExchange(ref bits, BitConverter.DoubleToInt64Bits(BitConverter.Int64BitsToDouble(current) + value), current);
                if (seen == current)
                {
                    return;
                }
            }
        }
    }
}
