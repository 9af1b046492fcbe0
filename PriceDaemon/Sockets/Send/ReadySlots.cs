using System.Numerics;

namespace PriceDaemon.Sockets.Send;

/// <summary>
/// Which of a session's subscriptions have a frame to write: one bit per slot. Fan-out marks a slot with
/// one interlocked OR on a word the session owns; a send pass takes 64 marks with one exchange and then
/// reads the subscriptions from an array. Against a linked ready list this keeps the cache lines that the
/// fan-out thread and the send thread hand to each other to a few per session instead of one per frame,
/// and the pass reads its subscriptions through independent loads rather than a chain of pointers.
/// </summary>
/// <remarks>
/// A struct over the words' array, held in the session's own field: fan-out's mark and the pass's take reach the
/// words with one pointer less, so one cache line less to miss on each side (in campus-peak a socket's state has left
/// the core's caches by the time its turn comes again). Copies share the array, so a copy marks what the original takes.
/// </remarks>
public readonly struct ReadySlots
{
    private const int BitsPerWord = 64;

    private readonly ulong[] _words;

    public ReadySlots(int capacity)
    {
        _words = new ulong[Math.Max(1, (capacity + BitsPerWord - 1) / BitsPerWord)];
    }

    public int WordCount => _words.Length;

    /// <summary>
    /// Marks a slot; true when it was not marked. Starts with a full fence, so a frame stored before the
    /// call is visible to the pass that takes the mark, even when the slot was already marked.
    /// </summary>
    public bool Mark(int slot)
    {
        ref var word = ref _words[slot / BitsPerWord];
        var bit = 1UL << (slot % BitsPerWord);
        Interlocked.MemoryBarrier();
        if ((Volatile.Read(ref word) & bit) != 0)
        {
            return false;
        }

        return (Interlocked.Or(ref word, bit) & bit) == 0;
    }

    /// <summary>Takes the marks of one word (slots <c>64 * word</c> and up); 0 when none.</summary>
    public ulong Take(int word) =>
        Volatile.Read(ref _words[word]) == 0 ? 0 : Interlocked.Exchange(ref _words[word], 0);

    /// <summary>Puts back marks a pass took but did not get to.</summary>
    public void Return(int word, ulong marks) => Interlocked.Or(ref _words[word], marks);

    /// <summary>The slot of the lowest mark in <paramref name="marks"/>, which loses that mark.</summary>
    public static int Next(int word, ref ulong marks)
    {
        var slot = (word * BitsPerWord) + BitOperations.TrailingZeroCount(marks);
        marks &= marks - 1;
        return slot;
    }

    /// <summary>Whether any slot is marked.</summary>
    public bool Any()
    {
        foreach (ref var word in _words.AsSpan())
        {
            if (Volatile.Read(ref word) != 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Marked slots, for diagnostics and tests.</summary>
    public int Count()
    {
        var count = 0;
        foreach (ref var word in _words.AsSpan())
        {
            count += BitOperations.PopCount(Volatile.Read(ref word));
        }

        return count;
    }
}
