namespace Backprop;

/// <summary>
/// Per-thread interning of shape arrays and their contiguous strides, so that the tensors a training
/// loop creates step after step share these small arrays instead of allocating new ones.
/// </summary>
internal static class ShapeCache
{
    private const int MaxEntries = 4096;

    private sealed class Entry(int[] shape, int[] strides)
    {
        public readonly int[] Shape = shape;
        public readonly int[] Strides = strides;
    }

    private sealed class ContentComparer : IEqualityComparer<int[]>, IAlternateEqualityComparer<ReadOnlySpan<int>, int[]>
    {
        public bool Equals(int[]? x, int[]? y) => ReferenceEquals(x, y) || (x != null && y != null && x.AsSpan().SequenceEqual(y));
        public int GetHashCode(int[] obj) => Hash(obj);
        public bool Equals(ReadOnlySpan<int> alternate, int[] other) => alternate.SequenceEqual(other);
        public int GetHashCode(ReadOnlySpan<int> alternate) => Hash(alternate);
        public int[] Create(ReadOnlySpan<int> alternate) => alternate.ToArray();

        private static int Hash(ReadOnlySpan<int> dims)
        {
            int h = dims.Length;
            foreach (var d in dims) h = unchecked(h * 31 + d);
            return h;
        }
    }

    [ThreadStatic] private static Dictionary<int[], Entry>? _entries;

    private static Dictionary<int[], Entry> Entries
    {
        get
        {
            var e = _entries;
            if (e == null || e.Count > MaxEntries) _entries = e = new Dictionary<int[], Entry>(new ContentComparer());
            return e;
        }
    }

    private static Entry Get(ReadOnlySpan<int> dims)
    {
        var lookup = Entries.GetAlternateLookup<ReadOnlySpan<int>>();
        if (lookup.TryGetValue(dims, out var entry)) return entry;
        var shape = dims.ToArray();
        entry = new Entry(shape, Tensor.ContiguousStrides(shape));
        lookup.Dictionary[shape] = entry;
        return entry;
    }

    /// <summary>The interned array holding these dimensions (never mutate it).</summary>
    public static int[] Intern(ReadOnlySpan<int> dims) => Get(dims).Shape;

    /// <summary>The shared contiguous strides for a shape (never mutate them).</summary>
    public static int[] ContiguousStrides(ReadOnlySpan<int> dims) => Get(dims).Strides;
}
