namespace Backprop.Backends.Cpu;

/// <summary>A typed flat buffer in a managed array: the CPU backend's storage.</summary>
internal sealed class CpuStorage<T> : Storage where T : unmanaged
{
    private readonly T[] _data;
    private readonly bool _pooled;

    /// <summary>Wraps an array the caller owns (never pooled).</summary>
    public CpuStorage(T[] data) => _data = data;

    /// <summary>A buffer of exactly <paramref name="length"/> elements from the pool (contents undefined).</summary>
    public CpuStorage(int length)
    {
        _pooled = length > 0;
        _data = _pooled ? BufferPool<T>.Rent(length) : [];
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
    public override IBackend Backend => CpuBackend.Instance;

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
