using System.Collections;
using System.Text;

namespace Backprop;

/// <summary>An immutable tensor shape: the size of each dimension.</summary>
/// <remarks>Wraps an array that is never mutated, so tensors can share it without copying.</remarks>
public readonly struct Shape : IEquatable<Shape>, IReadOnlyList<int>
{
    private readonly int[]? _dims;

    /// <summary>Creates a shape from dimension sizes (copied).</summary>
    public Shape(params int[] dims) => _dims = (int[])dims.Clone();

    internal Shape(int[] dims, bool share) => _dims = share ? dims : (int[])dims.Clone();

    internal int[] Dims => _dims ?? [];

    /// <summary>Number of dimensions.</summary>
    public int Rank => Dims.Length;

    /// <summary>Number of dimensions (same as <see cref="Rank"/>).</summary>
    public int Count => Dims.Length;

    /// <summary>Size of dimension <paramref name="dim"/>; negative values count from the end.</summary>
    public int this[int dim] => Dims[dim < 0 ? dim + Dims.Length : dim];

    /// <summary>Product of the dimension sizes (1 for a scalar).</summary>
    public long NumElements => Product(Dims);

    /// <summary>A copy of the dimension sizes.</summary>
    public int[] ToArray() => (int[])Dims.Clone();

    /// <summary>The dimension sizes as a span.</summary>
    public ReadOnlySpan<int> AsSpan() => Dims;

    internal static long Product(ReadOnlySpan<int> dims)
    {
        long n = 1;
        foreach (var d in dims) n *= d;
        return n;
    }

    /// <summary>Formats like <c>[2, 3]</c>.</summary>
    public override string ToString() => Format(Dims);

    internal static string Format(ReadOnlySpan<int> dims)
    {
        var sb = new StringBuilder("[");
        for (int i = 0; i < dims.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(dims[i]);
        }
        return sb.Append(']').ToString();
    }

    /// <inheritdoc/>
    public bool Equals(Shape other) => Dims.AsSpan().SequenceEqual(other.Dims);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Shape s && Equals(s);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var d in Dims) h.Add(d);
        return h.ToHashCode();
    }

    /// <summary>Shape equality.</summary>
    public static bool operator ==(Shape a, Shape b) => a.Equals(b);

    /// <summary>Shape inequality.</summary>
    public static bool operator !=(Shape a, Shape b) => !a.Equals(b);

    /// <summary>Converts dimension sizes to a shape.</summary>
    public static implicit operator Shape(int[] dims) => new(dims);

    /// <inheritdoc/>
    public IEnumerator<int> GetEnumerator() => ((IEnumerable<int>)Dims).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    /// <summary>The NumPy broadcast of two shapes, or a <see cref="ShapeException"/> naming <paramref name="op"/>.</summary>
    internal static int[] Broadcast(string op, int[] a, int[] b)
    {
        if (a.AsSpan().SequenceEqual(b)) return a;
        int rank = Math.Max(a.Length, b.Length);
        Span<int> r = rank <= 16 ? stackalloc int[rank] : new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i - (rank - a.Length) >= 0 ? a[i - (rank - a.Length)] : 1;
            int db = i - (rank - b.Length) >= 0 ? b[i - (rank - b.Length)] : 1;
            if (da == db || db == 1) r[i] = da;
            else if (da == 1) r[i] = db;
            else
                throw new ShapeException(
                    $"{op}: shapes {Format(a)} and {Format(b)} cannot be broadcast together: dimension {i - rank} is {da} in one and {db} in the other.");
        }
        return ShapeCache.Intern(r); // shared: never mutate
    }


    /// <summary>True when <paramref name="strides"/> lay out <paramref name="shape"/> row-major without gaps.</summary>
    internal static bool IsContiguous(int[] shape, int[] strides)
    {
        // No elements, nothing out of place: whatever the strides (ContiguousStrides counts a 0
        // dimension as 1, which the loop below would otherwise reject).
        if (shape.AsSpan().Contains(0)) return true;
        int expected = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] == 1) continue;
            if (strides[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }
}
