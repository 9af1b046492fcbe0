using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace PriceDaemon.Pipeline;

/// <summary>
/// Epoch-based reclamation for pooled price frames. A reader announces itself in a slot with the global epoch it
/// read on entry (<see cref="Enter"/>) and clears the slot on exit; the single writer (the throttle) tags each frame
/// it takes out of the <see cref="PriceCache"/> with the epoch before its own increment. A retired frame may be
/// reused once every announced slot is empty or newer than the tag: a reader that entered later read the cache after
/// the frame left it (the writer's increment is a full fence after the cache write, the reader's claim a full fence
/// before its cache read), so it cannot reach the frame. A reader costs two interlocked operations (claim, and a
/// compare-and-clear of its own claim on exit); the writer one interlocked increment per retired frame and a scan of
/// the slots only when its pool's head is not known safe yet. The scan stops at the highest slot ever claimed
/// (<c>_used</c>): a reader raises it with an interlocked operation after its claim and before its cache read, so a
/// writer that read the old mark scanned before that raise, hence incremented the epoch before the reader read the
/// cache, and the reader cannot reach a frame the writer retired then. Readers start at their thread id's slot, so
/// the mark is the highest such slot in use (at most the slot count), not the number of readers.
/// </summary>
public sealed class FrameEpochs
{
    // A claim is the epoch shifted left by this, with the slot's claim count in the low bits: two claims of one slot
    // at the same epoch still differ, so a scope disposed twice cannot clear a later reader's claim (see Exit).
    private const int ClaimBits = 16;
    private const long ClaimMask = (1L << ClaimBits) - 1;

    // Padded to 128 bytes (the adjacent-line prefetcher pulls lines in pairs) with the claim in the middle: two send
    // threads entering at once, or a slot and the array's header, never share a pair of lines.
    [StructLayout(LayoutKind.Explicit, Size = 128)]
    private struct Slot
    {
        [FieldOffset(64)]
        public long Claim;

        // Claims of this slot so far; written only by the reader that holds the slot.
        [FieldOffset(72)]
        public long Count;
    }

    // The global epoch alone on its pair of lines: the writer increments it per retired frame, and the readers' slots
    // and the writer's other fields must not be invalidated with it.
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct PaddedEpoch
    {
        [FieldOffset(128)]
        public long Value;
    }

    private readonly Slot[] _slots;
    private PaddedEpoch _global = new() { Value = 1 };
    private int _used; // slots [0, _used) have been claimed at least once: the writer's scan stops there

    /// <param name="slots">Readers inside a scope at once; more spin until one leaves (each scope is a few microseconds).</param>
    public FrameEpochs(int slots = 64)
    {
        _slots = new Slot[slots];
    }

    /// <summary>
    /// Enters a read scope: until it is disposed, no frame read from the <see cref="PriceCache"/> inside it is reused.
    /// The scope is a <c>ref struct</c>: the compiler refuses a <c>using var scope</c> (or any local of the type) in an
    /// <c>async</c> method whose scope spans an <c>await</c>, and refuses to store it in a field, a lambda's closure or a
    /// boxed value. It does not stop a <see cref="PriceFrame"/> reference read inside from being kept past the scope:
    /// that is the reader's discipline (copy bytes or fields out, never the reference). Never block or wait inside a
    /// scope: the pool grows while one is open.
    /// </summary>
    public FrameReadScope Enter()
    {
        var start = Environment.CurrentManagedThreadId;
        var spinner = default(SpinWait);
        while (true)
        {
            // Read the epoch first: announcing an older one than the current is only more careful.
            var epoch = Volatile.Read(ref _global.Value);
            for (var i = 0; i < _slots.Length; i++)
            {
                // Start at the thread's own place: a send thread finds the same free slot every pass.
                var index = (start + i) % _slots.Length;
                ref var slot = ref _slots[index];
                if (Volatile.Read(ref slot.Claim) == 0)
                {
                    // The count is read while the slot is free: the last holder wrote it before its releasing Exit.
                    var claim = (epoch << ClaimBits) | ((slot.Count + 1) & ClaimMask);
                    if (Interlocked.CompareExchange(ref slot.Claim, claim, 0) == 0)
                    {
                        slot.Count++;
                        if (index >= Volatile.Read(ref _used))
                        {
                            RaiseUsed(index + 1);
                        }

                        return new FrameReadScope(this, index, claim);
                    }
                }
            }

            // Every slot busy: more readers than slots at this instant. Their scopes are short; spin, then yield.
            spinner.SpinOnce();
        }
    }

    /// <summary>Writer side: the epoch to tag a frame just replaced in the cache with; moves the global epoch on.</summary>
    internal long Retire() => Interlocked.Increment(ref _global.Value) - 1;

    /// <summary>The epoch the next retired frame will be tagged with, for the oldest reader's age.</summary>
    internal long Current => Volatile.Read(ref _global.Value);

    /// <summary>
    /// Writer side: frames tagged below the returned value are reachable by no reader. Once true for a tag it stays
    /// true: a reader entering later announces at least the current epoch, which is above every tag given so far.
    /// The pool calls it only when its head's tag is not already known safe.
    /// </summary>
    internal long SafeBelow()
    {
        // Everything before this point may be a reader's; the fence orders the scan after the writer's cache writes.
        var safe = Interlocked.Read(ref _global.Value);
        var used = Volatile.Read(ref _used);
        for (var i = 0; i < used; i++)
        {
            var epoch = Volatile.Read(ref _slots[i].Claim) >> ClaimBits;
            if (epoch != 0 && epoch < safe)
            {
                safe = epoch;
            }
        }

        return safe;
    }

    /// <summary>Epochs since the oldest reader inside a scope now entered (0 when none is): a reader stuck in a scope grows it.</summary>
    internal long OldestReaderAge()
    {
        var current = Current;
        var oldest = current;
        for (var i = 0; i < _slots.Length; i++)
        {
            var epoch = Volatile.Read(ref _slots[i].Claim) >> ClaimBits;
            if (epoch != 0 && epoch < oldest)
            {
                oldest = epoch;
            }
        }

        return current - oldest;
    }

    /// <summary>Readers inside a scope now, for tests and diagnostics.</summary>
    internal int Active()
    {
        var active = 0;
        for (var i = 0; i < _slots.Length; i++)
        {
            active += Volatile.Read(ref _slots[i].Claim) != 0 ? 1 : 0;
        }

        return active;
    }

    /// <summary>
    /// Clears the slot only if it still holds this scope's own claim (a release, ordering the reader's reads before it).
    /// A copy of a scope disposed a second time finds another claim, or none, and leaves it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Exit(int index, long claim) => Interlocked.CompareExchange(ref _slots[index].Claim, 0, claim);

    private void RaiseUsed(int used)
    {
        var seen = Volatile.Read(ref _used);
        while (seen < used)
        {
            var found = Interlocked.CompareExchange(ref _used, used, seen);
            if (found == seen)
            {
                return;
            }

            seen = found;
        }
    }
}

/// <summary>
/// A reader's claim on the frames it reads from the <see cref="PriceCache"/> (see <see cref="FrameEpochs"/>).
/// Dispose it (<c>using</c>) as soon as the bytes are copied out; it cannot cross an <c>await</c>.
/// </summary>
public readonly ref struct FrameReadScope
{
    private readonly FrameEpochs? _epochs;
    private readonly int _index;
    private readonly long _claim;

    internal FrameReadScope(FrameEpochs epochs, int index, long claim)
    {
        _epochs = epochs;
        _index = index;
        _claim = claim;
    }

    public void Dispose() => _epochs?.Exit(_index, _claim);
}
