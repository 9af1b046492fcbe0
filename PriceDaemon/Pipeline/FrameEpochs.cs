using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace PriceDaemon.Pipeline;

/// <summary>
/// Epoch-based reclamation for pooled price frames. A reader announces itself in a slot with the global epoch it
/// read on entry (<see cref="Enter"/>) and clears the slot on exit; the single writer (the throttle) tags each frame
/// it takes out of the <see cref="PriceCache"/> with the epoch before its own increment. A retired frame may be
/// reused once every announced slot is empty or newer than the tag: a reader that entered later read the cache after
/// the frame left it (the writer's increment is a full fence after the cache write, the reader's claim a full fence
/// before its cache read), so it cannot reach the frame. A reader costs one interlocked claim and one plain store;
/// the writer one interlocked increment per retired frame and a scan of the slots only when its pool runs dry.
/// </summary>
public sealed class FrameEpochs
{
    // Padded: each slot on its own cache line, so two send threads entering at once do not share one.
    [StructLayout(LayoutKind.Explicit, Size = 64)]
    private struct Slot
    {
        [FieldOffset(0)]
        public long Epoch;
    }

    private readonly Slot[] _slots;
    private long _global = 1;
    private int _used; // slots [0, _used) have been claimed at least once: the scan stops there

    /// <param name="slots">Readers inside a scope at once; more spin until one leaves (each scope is a few microseconds).</param>
    public FrameEpochs(int slots = 64)
    {
        _slots = new Slot[slots];
    }

    /// <summary>
    /// Enters a read scope: until it is disposed, no frame read from the <see cref="PriceCache"/> inside it is reused.
    /// A <c>ref struct</c>, so the compiler refuses to keep one across an <c>await</c>: copy what you need out of a
    /// frame before awaiting. Never block or wait inside a scope: the pool grows while one is open.
    /// </summary>
    public FrameReadScope Enter()
    {
        var start = Environment.CurrentManagedThreadId;
        var spinner = default(SpinWait);
        while (true)
        {
            // Read the epoch first: announcing an older one than the current is only more careful.
            var epoch = Volatile.Read(ref _global);
            for (var i = 0; i < _slots.Length; i++)
            {
                // Start at the thread's own place: a send thread finds the same free slot every pass.
                var index = (start + i) % _slots.Length;
                ref var slot = ref _slots[index].Epoch;
                if (Volatile.Read(ref slot) == 0 && Interlocked.CompareExchange(ref slot, epoch, 0) == 0)
                {
                    if (index >= Volatile.Read(ref _used))
                    {
                        RaiseUsed(index + 1);
                    }

                    return new FrameReadScope(this, index);
                }
            }

            // Every slot busy: more readers than slots at this instant. Their scopes are short; spin, then yield.
            spinner.SpinOnce();
        }
    }

    /// <summary>Writer side: the epoch to tag a frame just replaced in the cache with; moves the global epoch on.</summary>
    internal long Retire() => Interlocked.Increment(ref _global) - 1;

    /// <summary>
    /// Writer side: frames tagged below the returned value are reachable by no reader. Once true for a tag it stays
    /// true: a reader entering later announces at least the current epoch, which is above every tag given so far.
    /// </summary>
    internal long SafeBelow()
    {
        // Everything before this point may be a reader's; the fence orders the scan after the writer's cache writes.
        var safe = Interlocked.Read(ref _global);
        var used = Volatile.Read(ref _used);
        for (var i = 0; i < used; i++)
        {
            var epoch = Volatile.Read(ref _slots[i].Epoch);
            if (epoch != 0 && epoch < safe)
            {
                safe = epoch;
            }
        }

        return safe;
    }

    /// <summary>Readers inside a scope now, for tests and diagnostics.</summary>
    internal int Active()
    {
        var active = 0;
        for (var i = 0; i < _slots.Length; i++)
        {
            active += Volatile.Read(ref _slots[i].Epoch) != 0 ? 1 : 0;
        }

        return active;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Exit(int index) => Volatile.Write(ref _slots[index].Epoch, 0);

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

    internal FrameReadScope(FrameEpochs epochs, int index)
    {
        _epochs = epochs;
        _index = index;
    }

    public void Dispose() => _epochs?.Exit(_index);
}
