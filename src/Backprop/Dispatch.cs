using Backprop.Backends;

namespace Backprop;

/// <summary>
/// The tensor-level side of the backend seam: checks arguments, allocates outputs on the inputs'
/// device and calls its <see cref="IBackend"/> with views. Ops, losses, optimizers and the engine
/// compute through these helpers (or call the backend directly with <see cref="Tensor.V"/>); none of
/// them touches a buffer.
/// </summary>
internal static class Dispatch
{
    internal static Exception NotFloat(string op, Tensor t) =>
        new NotSupportedException($"{op}: expected a floating-point tensor (float32 or float64), got {t.DType.Name()} of shape {t.Shape}.");

    internal static void CheckSameDType(string op, Tensor a, Tensor b)
    {
        if (a.DType != b.DType)
            throw new ArgumentException($"{op}: dtypes differ: {a.DType.Name()} {a.Shape} and {b.DType.Name()} {b.Shape}; convert one with To(DType).");
    }

    /// <summary>The backend both tensors live on (an error naming the op when they differ).</summary>
    internal static IBackend BackendOf(string op, Tensor a, Tensor b)
    {
        var ba = a.Backend;
        if (!ReferenceEquals(ba, b.Backend))
            throw new ArgumentException($"{op}: tensors are on different devices ({ba.Device} and {b.Backend.Device}); move one with To(Device).");
        return ba;
    }

    // ------------------------------------------------------------------ elementwise

    /// <summary>y = f(x) in a new contiguous tensor, for float32 or float64 x.</summary>
    public static Tensor Map(string name, Tensor x, UnaryOp op, double p0 = 0, double p1 = 0)
    {
        if (!x.DType.IsFloatingPoint()) throw NotFloat(name, x);
        var y = Tensor.Empty(x._shape, x.DType, x.Backend);
        x.Backend.Unary(op, x.V, y.V, p0, p1);
        return y;
    }

    /// <summary>y = f(a, b) with broadcasting, in a new contiguous tensor, for float32 or float64 a and b of the same dtype.</summary>
    public static Tensor Zip(string name, Tensor a, Tensor b, BinaryOp op, double p0 = 0, double p1 = 0)
    {
        CheckSameDType(name, a, b);
        if (!a.DType.IsFloatingPoint()) throw NotFloat(name, a);
        var backend = BackendOf(name, a, b);
        var shape = Shape.Broadcast(name, a._shape, b._shape);
        var y = Tensor.Empty(shape, a.DType, backend);
        backend.Binary(op, a.V, b.V, y.V, p0, p1);
        return y;
    }

    /// <summary>y = x · s written into y (may be x itself; not recorded).</summary>
    public static void ScaleInto(Tensor x, Tensor y, double s)
    {
        if (!x.DType.IsFloatingPoint()) throw NotFloat("Scale", x);
        x.Backend.Unary(UnaryOp.Scale, x.V, y.V, s);
    }

    /// <summary>y = x · s in a new tensor (not recorded).</summary>
    public static Tensor Scaled(Tensor x, double s) => Map("Scale", x, UnaryOp.Scale, s);

    /// <summary>dst += src (src broadcast to dst's shape), in place, not recorded.</summary>
    public static void AddInPlace(Tensor dst, Tensor src)
    {
        CheckSameDType("AddInPlace", dst, src);
        if (!dst.DType.IsFloatingPoint()) throw NotFloat("AddInPlace", dst);
        BackendOf("AddInPlace", dst, src).Binary(BinaryOp.Add, dst.V, src.V, dst.V);
        dst.BumpVersion();
    }

    /// <summary>a + b in a new tensor, not recorded.</summary>
    public static Tensor AddNew(Tensor a, Tensor b) => Zip("Add", a, b, BinaryOp.Add);

    // ------------------------------------------------------------------ copies

    /// <summary>A new contiguous tensor with the same values (always a copy, not recorded).</summary>
    public static Tensor ToContiguous(Tensor t)
    {
        var y = Tensor.Empty(t._shape, t.DType, t.Backend);
        t.Backend.Copy(t.V, y.V);
        return y;
    }

    /// <summary>Copies <paramref name="src"/>, broadcast to <paramref name="dst"/>'s shape, into <paramref name="dst"/> (same dtype).</summary>
    public static void CopyInto(Tensor src, Tensor dst)
    {
        CheckSameDType("Copy", src, dst);
        if (src.Rank > dst.Rank) throw new ShapeException($"Copy: cannot copy shape {src.Shape} into shape {dst.Shape}.");
        for (int i = 0; i < dst.Rank; i++)
        {
            int j = i - (dst.Rank - src.Rank);
            if (j >= 0 && src._shape[j] != 1 && src._shape[j] != dst._shape[i])
                throw new ShapeException($"Copy: cannot copy shape {src.Shape} into shape {dst.Shape}.");
        }
        BackendOf("Copy", src, dst).Copy(src.V, dst.V);
        dst.BumpVersion();
    }

    /// <summary>A contiguous copy converted to <paramref name="dtype"/> (not recorded).</summary>
    public static Tensor Convert(Tensor t, DType dtype)
    {
        var y = Tensor.Empty(t._shape, dtype, t.Backend);
        t.Backend.Copy(t.V, y.V);
        return y;
    }

    // ------------------------------------------------------------------ reductions

    /// <summary>Normalizes and validates a list of dimensions; null or empty means all.</summary>
    public static bool[] DimMask(string op, int rank, ReadOnlySpan<int> dims)
    {
        var mask = new bool[rank];
        if (dims.IsEmpty)
        {
            Array.Fill(mask, true);
            return mask;
        }
        foreach (var d in dims)
        {
            int n = Tensor.NormalizeDim(d, rank, op);
            if (rank == 0) continue;
            if (mask[n]) throw new ArgumentException($"{op}: dimension {d} appears more than once in the list of dimensions.");
            mask[n] = true;
        }
        return mask;
    }

    /// <summary>Output shape of a reduction over the masked dimensions.</summary>
    public static int[] ReducedShape(int[] shape, bool[] mask, bool keepDim)
    {
        Span<int> r = shape.Length <= 16 ? stackalloc int[shape.Length] : new int[shape.Length];
        int n = 0;
        for (int i = 0; i < shape.Length; i++)
        {
            if (!mask[i]) r[n++] = shape[i];
            else if (keepDim) r[n++] = 1;
        }
        return ShapeCache.Intern(r[..n]); // shared: never mutate
    }

    /// <summary>Sum of <paramref name="x"/> over the masked dims (not recorded); the result has the keepDim shape.</summary>
    public static Tensor Sum(Tensor x, bool[] mask, bool keepDim)
    {
        if (!x.DType.IsFloatingPoint()) throw NotFloat("Sum", x);
        var kept = ReducedShape(x._shape, mask, keepDim: true);
        var y = Tensor.Empty(kept, x.DType, x.Backend);
        x.Backend.Sum(x.V, y.V);
        return keepDim ? y : y.ViewAs(ReducedShape(x._shape, mask, keepDim: false));
    }

    /// <summary>Sums <paramref name="x"/> down to <paramref name="shape"/> (the inverse of broadcasting; not recorded).</summary>
    public static Tensor SumTo(Tensor x, int[] shape)
    {
        if (x._shape.AsSpan().SequenceEqual(shape)) return x;
        int lead = x.Rank - shape.Length;
        if (lead < 0) throw new ShapeException($"SumTo: cannot reduce shape {x.Shape} to the larger rank shape {Shape.Format(shape)}.");
        Span<int> kept = x.Rank <= 16 ? stackalloc int[x.Rank] : new int[x.Rank];
        for (int i = 0; i < x.Rank; i++)
        {
            int j = i - lead;
            if (j < 0) kept[i] = 1;
            else if (shape[j] == x._shape[i]) kept[i] = shape[j];
            else if (shape[j] == 1) kept[i] = 1;
            else throw new ShapeException($"SumTo: cannot reduce shape {x.Shape} to {Shape.Format(shape)}.");
        }
        if (!x.DType.IsFloatingPoint()) throw NotFloat("SumTo", x);
        var y = Tensor.Empty(ShapeCache.Intern(kept), x.DType, x.Backend);
        x.Backend.Sum(x.V, y.V);
        return y.ViewAs(ShapeCache.Intern(shape));
    }

    /// <summary>Max (or min) along <paramref name="dim"/>: values and int64 indices with the reduced dim kept as size 1.</summary>
    public static (Tensor Values, Tensor Indices) ArgExtreme(Tensor x, int dim, bool max)
    {
        var shape = (int[])x._shape.Clone();
        shape[dim] = 1;
        var xc = x.ContiguousData();
        var v = Tensor.Empty(shape, x.DType, x.Backend);
        var idx = Tensor.Empty((int[])shape.Clone(), DType.Int64, x.Backend);
        x.Backend.ArgExtreme(xc.V, dim, max, v.V, idx.V);
        return (v, idx);
    }

    /// <summary>True when every element is finite (always true for integer tensors).</summary>
    public static bool AllFinite(Tensor t)
    {
        if (!t.DType.IsFloatingPoint()) return true;
        var (nan, pos, neg) = t.Backend.CountNonFinite(t.ContiguousData().V);
        return nan + pos + neg == 0;
    }

    /// <summary>Says how many NaN and infinite values a tensor holds and where the first is.</summary>
    public static string DescribeNonFinite(Tensor t)
    {
        var v = t.ToDoubleArray();
        int nan = 0, inf = 0, first = -1;
        for (int i = 0; i < v.Length; i++)
        {
            if (double.IsNaN(v[i])) nan++;
            else if (double.IsInfinity(v[i])) inf++;
            else continue;
            if (first < 0) first = i;
        }
        var parts = new List<string>();
        if (nan > 0) parts.Add($"{nan} NaN");
        if (inf > 0) parts.Add($"{inf} infinite");
        return $"{string.Join(" and ", parts)} value(s) (first at flat index {first})";
    }

    // ------------------------------------------------------------------ indexing

    /// <summary>Checks index against a source/target per torch.gather/scatter_add rules and returns it contiguous.</summary>
    public static Tensor CheckIndex(string op, Tensor index, Tensor other, int dim, bool isTarget)
    {
        if (index.DType != DType.Int64)
            throw new ArgumentException($"{op}: index must be an int64 tensor, got {index.DType.Name()}; convert with To(DType.Int64).");
        if (index.Rank != other.Rank)
            throw new ShapeException($"{op}: index has shape {index.Shape} but the {(isTarget ? "target" : "input")} has shape {other.Shape}; ranks must match.");
        for (int i = 0; i < index.Rank; i++)
            if (i != dim && index._shape[i] > other._shape[i])
                throw new ShapeException($"{op}: index shape {index.Shape} exceeds shape {other.Shape} in dimension {i}.");
        return index.ContiguousData();
    }

    /// <summary>target[..., index[p], ...] += src[p] for every position p of index (dimension <paramref name="dim"/> replaced), in place.</summary>
    public static void ScatterAddInto(Tensor target, int dim, Tensor index, Tensor src)
    {
        index = CheckIndex("ScatterAdd", index, target, dim, isTarget: true);
        for (int i = 0; i < index.Rank; i++)
            if (index._shape[i] > src._shape[i])
                throw new ShapeException($"ScatterAdd: index shape {index.Shape} exceeds the source shape {src.Shape} in dimension {i}.");
        CheckSameDType("ScatterAdd", target, src);
        if (!target.DType.IsFloatingPoint()) throw NotFloat("ScatterAdd", target);
        BackendOf("ScatterAdd", target, src).ScatterAdd(target.V, dim, index.V, src.V);
        target.BumpVersion();
    }

    /// <summary>y[p] = x[..., index[p], ...] for every position p of index; y has index's shape.</summary>
    public static Tensor Gather(Tensor x, int dim, Tensor index)
    {
        index = CheckIndex("Gather", index, x, dim, isTarget: false);
        var y = Tensor.Empty([.. index._shape], x.DType, x.Backend);
        BackendOf("Gather", x, index).Gather(x.V, dim, index.V, y.V);
        return y;
    }

    /// <summary>Validated int indices from a 1-D int64 index tensor for a dimension of the given size (a host copy of the indices).</summary>
    public static int[] Indices1D(string op, Tensor index, int size, int dim)
    {
        if (index.DType != DType.Int64)
            throw new ArgumentException($"{op}: index must be an int64 tensor, got {index.DType.Name()}; convert with To(DType.Int64).");
        if (index.Rank > 1)
            throw new ShapeException($"{op}: index must be 0- or 1-dimensional, got shape {index.Shape}.");
        var raw = index.ToLongArray();
        var r = new int[raw.Length];
        for (int i = 0; i < raw.Length; i++)
        {
            long v = raw[i] < 0 ? raw[i] + size : raw[i];
            if ((ulong)v >= (ulong)size)
                throw new IndexOutOfRangeException($"{op}: index {raw[i]} (at position {i}) is out of range for dimension {dim} of size {size}.");
            r[i] = (int)v;
        }
        return r;
    }

    /// <summary>y = x with dimension dim replaced by the selected slices.</summary>
    public static Tensor IndexSelect(Tensor x, int dim, int[] idx)
    {
        var shape = (int[])x._shape.Clone();
        shape[dim] = idx.Length;
        var y = Tensor.Empty(shape, x.DType, x.Backend);
        x.Backend.IndexSelect(x.V, dim, idx, y.V);
        return y;
    }

    /// <summary>target's slice idx[i] along dim += src's slice i (the backward of IndexSelect; repeated indices add up).</summary>
    public static void IndexAddInto(Tensor target, int dim, int[] idx, Tensor src)
    {
        BackendOf("IndexAdd", target, src).IndexAdd(target.V, dim, idx, src.V);
        target.BumpVersion();
    }
}

/// <summary>A reusable per-thread host array (random masks drawn before they are copied to a device).</summary>
internal static class HostScratch<T> where T : unmanaged
{
    [ThreadStatic] private static T[]? _buffer;

    /// <summary>A span of <paramref name="length"/> elements (contents undefined), valid until the next call on this thread.</summary>
    public static Span<T> Get(int length)
    {
        var b = _buffer;
        if (b == null || b.Length < length) _buffer = b = new T[Math.Max(length, (b?.Length ?? 0) * 2)];
        return b.AsSpan(0, length);
    }
}
