namespace PriceDaemon.Alerts;

/// <summary>
/// The alerts of one instrument waiting for the price to pass their lines in one direction, sorted so that those a
/// tick passes are always at the end: a tick looks at the last entry (O(1) when nothing fires) and pops what fires
/// (O(fired)); adding or removing one is a binary search and a shift, off the tick path.
/// </summary>
/// <remarks>
/// Keys are the line for an upward line (fires when price ≥ line, or &gt; for <see cref="Strict"/>) and the negated line
/// for a downward one, so both directions are "key ≤ x" with x the price or its negation; sorted descending by key.
/// </remarks>
internal sealed class TriggerLine(bool upward, bool strict)
{
    private (double Key, Alert Alert)[] _items = [];
    private int _count;

    public bool Upward { get; } = upward;

    /// <summary>Passing means strictly beyond the line (a reset), not reaching it (a fire).</summary>
    public bool Strict { get; } = strict;

    public int Count => _count;

    /// <summary>The line of the entry a tick would pass first; an infinity on the far side when the line is empty.</summary>
    public double Edge => _count == 0 ? (Upward ? double.PositiveInfinity : double.NegativeInfinity)
        : Upward ? _items[_count - 1].Key : -_items[_count - 1].Key;

    /// <summary>The last entry, if the price <paramref name="price"/> passes its line.</summary>
    public bool TryPeekPassed(double price, out Alert alert)
    {
        if (_count > 0)
        {
            var (key, last) = _items[_count - 1];
            var x = Upward ? price : -price;
            if (Strict ? key < x : key <= x)
            {
                alert = last;
                return true;
            }
        }

        alert = null!;
        return false;
    }

    /// <summary>Drops the last entry (the one <see cref="TryPeekPassed"/> returned).</summary>
    public void Pop()
    {
        _items[--_count] = default;
    }

    public void Add(Alert alert, double line)
    {
        var key = Upward ? line : -line;
        if (_count == _items.Length)
        {
            Array.Resize(ref _items, Math.Max(4, _count * 2));
        }

        // Descending: the first index whose key is below the new one; equal keys keep their order of arrival.
        int lo = 0, hi = _count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_items[mid].Key >= key)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        Array.Copy(_items, lo, _items, lo + 1, _count - lo);
        _items[lo] = (key, alert);
        _count++;
    }

    public bool Remove(Alert alert)
    {
        for (var i = 0; i < _count; i++)
        {
            if (ReferenceEquals(_items[i].Alert, alert))
            {
                Array.Copy(_items, i + 1, _items, i, _count - i - 1);
                _items[--_count] = default;
                return true;
            }
        }

        return false;
    }

    /// <summary>Takes out every entry that <paramref name="match"/> picks, into <paramref name="removed"/>.</summary>
    public void RemoveAll(Func<Alert, bool> match, List<Alert> removed)
    {
        var kept = 0;
        for (var i = 0; i < _count; i++)
        {
            if (match(_items[i].Alert))
            {
                removed.Add(_items[i].Alert);
            }
            else
            {
                _items[kept++] = _items[i];
            }
        }

        Array.Clear(_items, kept, _count - kept);
        _count = kept;
    }
}
