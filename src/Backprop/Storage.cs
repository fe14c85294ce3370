namespace Backprop;

/// <summary>The flat buffer behind one or more tensors (views share it).</summary>
/// <remarks>
/// Buffers come from <see cref="BufferPool{T}"/>. A storage is given back to the pool (and marked
/// <see cref="Released"/>) only when the library can prove nothing the user holds still reads it:
/// backward-pass temporaries, op-internal scratch, or everything produced inside a
/// <see cref="TensorScope"/> when that scope ends. A tensor over a released storage throws on access.
/// </remarks>
internal abstract class Storage
{
    /// <summary>Incremented by every in-place write, so backward can detect a saved tensor that changed.</summary>
    public int Version;

    /// <summary>True once the buffer went back to the pool; the storage must not be read or written again.</summary>
    public bool Released;

    /// <summary>Never give this buffer back (a leaf's gradient, a detached tensor, optimizer state).</summary>
    public bool Escaped;

    /// <summary>Allocated during a backward pass: a temporary unless it escaped into a leaf's Grad.</summary>
    public bool BackwardTemp;

    /// <summary>Op-internal scratch saved for backward (never returned to the caller): released with its node.</summary>
    public bool Scratch;

    /// <summary>Pending-gradient slots of the backward pass that refer to this storage.</summary>
    public int EngineRefs;

    public abstract DType DType { get; }
    public abstract int Length { get; }
    public abstract Array Array { get; }

    /// <summary>Gives the buffer back to the pool unless it escaped or was already released.</summary>
    public abstract void Release();

    protected Exception ReleasedError() => new ObjectDisposedException("Tensor",
        "this tensor's buffer was recycled: it was produced inside a Tensor.Scope() that has ended (or is an internal temporary). " +
        "Keep a tensor beyond its scope with Detach() before the scope ends, or read it inside the scope.");
}

/// <summary>A typed flat buffer.</summary>
internal sealed class Storage<T> : Storage where T : unmanaged
{
    private readonly T[] _data;
    private readonly bool _pooled;

    /// <summary>Wraps an array the caller owns (never pooled).</summary>
    public Storage(T[] data) => _data = data;

    /// <summary>
    /// A buffer of exactly <paramref name="length"/> elements from the pool (contents undefined).
    /// During a backward pass it is a backward temporary; otherwise, for an op's output
    /// (<paramref name="opOutput"/>), it belongs to the active <see cref="TensorScope"/>, if any.
    /// </summary>
    public Storage(int length, bool opOutput)
    {
        _pooled = length > 0;
        _data = _pooled ? BufferPool<T>.Rent(length) : [];
        if (Autograd.Engine.AllocatesTemporaries)
        {
            BackwardTemp = true;
            Autograd.Engine.TrackTemp(this);
        }
        else if (opOutput) TensorScope.Track(this);
    }

    /// <summary>The elements; throws if the buffer was recycled.</summary>
    public T[] Data
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if (Released) throw ReleasedError();
            return _data;
        }
    }

    public override DType DType => DTypeExtensions.Of<T>();
    public override int Length => _data.Length;
    public override Array Array => Data;

    public override void Release()
    {
        if (Released || Escaped || !_pooled) return;
        Released = true;
        BufferPool<T>.Return(_data);
    }
}

/// <summary>
/// Per-thread pool of arrays keyed by exact length, so a training loop that repeats the same
/// shapes reuses the same buffers. Bounded: at most <see cref="MaxPerLength"/> arrays per length
/// and <see cref="MaxPooledBytes"/> in all per thread; beyond that arrays are left to the GC.
/// </summary>
internal static class BufferPool<T> where T : unmanaged
{
    private const int MaxPerLength = 64;
    private const long MaxPooledBytes = 512L << 20;

    [ThreadStatic] private static Dictionary<int, Stack<T[]>>? _free;
    [ThreadStatic] private static long _pooledBytes;

    public static T[] Rent(int length)
    {
        var free = _free;
        if (free != null && free.TryGetValue(length, out var stack) && stack.Count > 0)
        {
            var a = stack.Pop();
            _pooledBytes -= (long)length * Unsafe.SizeOf<T>();
            return a;
        }
        return GC.AllocateUninitializedArray<T>(length);
    }

    public static void Return(T[] array)
    {
        long bytes = (long)array.Length * Unsafe.SizeOf<T>();
        if (_pooledBytes + bytes > MaxPooledBytes) return;
        var free = _free ??= new Dictionary<int, Stack<T[]>>();
        if (!free.TryGetValue(array.Length, out var stack)) free[array.Length] = stack = new Stack<T[]>();
        if (stack.Count >= MaxPerLength) return;
        stack.Push(array);
        _pooledBytes += bytes;
    }

    /// <summary>Arrays of this length waiting in the current thread's pool (for tests).</summary>
    internal static int Available(int length) => _free != null && _free.TryGetValue(length, out var s) ? s.Count : 0;

    /// <summary>Drops every pooled array of the current thread.</summary>
    internal static void Clear()
    {
        _free = null;
        _pooledBytes = 0;
    }
}
