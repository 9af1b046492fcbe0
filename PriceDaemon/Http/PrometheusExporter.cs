using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using PriceDaemon.Pipeline;

namespace PriceDaemon.Http;

/// <summary>
/// Renders the daemon's <see cref="System.Diagnostics.Metrics"/> meters in the Prometheus text format for
/// <c>GET /metrics</c>. Observable instruments (all of the daemon's own) are read at scrape time, so
/// metrics cost nothing between scrapes; plain counters are summed as they are recorded.
/// </summary>
internal sealed class PrometheusExporter : IDisposable
{
    // Our pipeline, and the runtime's own (CPU, memory, GC, thread pool) that .NET publishes itself.
    private static readonly HashSet<string> _meters = [PipelineMetrics.MeterName, "System.Runtime"];

    private readonly MeterListener _listener = new();
    private readonly Lock _gate = new();
    // Latency buckets in seconds, 100 µs to 2.5 s: the daemon's budgets sit between 2 and 50 ms.
    private static readonly double[] _buckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

    private readonly Dictionary<(Instrument Instrument, string Labels), double> _values = [];
    private readonly Dictionary<(Instrument Instrument, string Labels), HistogramState> _histograms = [];

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
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    public string Scrape()
    {
        lock (_gate)
        {
            _listener.RecordObservableInstruments();
            var text = new StringBuilder();
            RenderHistograms(text);
            foreach (var group in _values.GroupBy(e => e.Key.Instrument).OrderBy(g => g.Key.Meter.Name, StringComparer.Ordinal).ThenBy(g => g.Key.Name, StringComparer.Ordinal))
            {
                var instrument = group.Key;
                var isCounter = IsCounter(instrument);
                var name = MetricName(instrument, isCounter);
                if (instrument.Description is { Length: > 0 } help)
                {
                    text.Append("# HELP ").Append(name).Append(' ').Append(help.Replace("\n", " ", StringComparison.Ordinal)).Append('\n');
                }

                text.Append("# TYPE ").Append(name).Append(isCounter ? " counter\n" : " gauge\n");
                foreach (var ((_, labels), value) in group.OrderBy(e => e.Key.Labels, StringComparer.Ordinal))
                {
                    text.Append(name).Append(labels).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
                }
            }

            return text.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();

    private void Record<T>(Instrument instrument, T value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        where T : struct, IConvertible
    {
        var key = (instrument, Labels(tags));
        var number = value.ToDouble(CultureInfo.InvariantCulture);
        lock (_gate)
        {
            if (instrument.GetType().Name.StartsWith("Histogram", StringComparison.Ordinal))
            {
                if (!_histograms.TryGetValue(key, out var histogram))
                {
                    _histograms[key] = histogram = new HistogramState();
                }

                histogram.Add(number);
                return;
            }

            // Observable instruments report the current value; plain counters report increments.
            _values[key] = instrument.IsObservable ? number : _values.GetValueOrDefault(key) + number;
        }
    }

    private void RenderHistograms(StringBuilder text)
    {
        foreach (var group in _histograms.GroupBy(e => e.Key.Instrument).OrderBy(g => g.Key.Name, StringComparer.Ordinal))
        {
            var name = MetricName(group.Key, isCounter: false);
            text.Append("# HELP ").Append(name).Append(' ').Append(group.Key.Description).Append('\n');
            text.Append("# TYPE ").Append(name).Append(" histogram\n");
            foreach (var ((_, labels), histogram) in group)
            {
                var prefix = labels.Length == 0 ? "{" : labels[..^1] + ",";
                long cumulative = 0;
                for (var i = 0; i <= _buckets.Length; i++)
                {
                    cumulative += histogram.Counts[i];
                    var le = i < _buckets.Length ? _buckets[i].ToString("R", CultureInfo.InvariantCulture) : "+Inf";
                    text.Append(name).Append("_bucket").Append(prefix).Append("le=\"").Append(le).Append("\"} ").Append(cumulative).Append('\n');
                }

                text.Append(name).Append("_sum").Append(labels).Append(' ').Append(histogram.Sum.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
                text.Append(name).Append("_count").Append(labels).Append(' ').Append(cumulative).Append('\n');
            }
        }
    }

    private static bool IsCounter(Instrument instrument)
    {
        var type = instrument.GetType().Name;
        return type.StartsWith("Counter", StringComparison.Ordinal) || type.StartsWith("ObservableCounter", StringComparison.Ordinal);
    }

    private static string MetricName(Instrument instrument, bool isCounter)
    {
        var name = new StringBuilder(instrument.Name.Length + 8);
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
        if (tags.IsEmpty)
        {
            return "";
        }

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

    private sealed class HistogramState
    {
        public long[] Counts { get; } = new long[_buckets.Length + 1];

        public double Sum { get; private set; }

        public void Add(double value)
        {
            var bucket = Array.BinarySearch(_buckets, value);
            Counts[bucket >= 0 ? bucket : ~bucket]++;
            Sum += value;
        }
    }
}
