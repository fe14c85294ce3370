using System.Numerics.Tensors;

namespace Backprop.Kernels;

/// <summary>Reductions: sums over any set of dimensions, extrema along one dimension, finiteness checks.</summary>
internal static class Reduce
{
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
        var r = new List<int>(shape.Length);
        for (int i = 0; i < shape.Length; i++)
        {
            if (!mask[i]) r.Add(shape[i]);
            else if (keepDim) r.Add(1);
        }
        return [.. r];
    }

    /// <summary>Sum of <paramref name="x"/> over the masked dims; the result has the keepDim shape.</summary>
    public static Tensor Sum(Tensor x, bool[] mask, bool keepDim)
    {
        var keptShape = ReducedShape(x._shape, mask, keepDim: true);
        Tensor y = x.DType switch
        {
            DType.Float32 => SumCore<float>(x, keptShape),
            DType.Float64 => SumCore<double>(x, keptShape),
            _ => throw Elementwise.NotFloat("Sum", x),
        };
        return keepDim ? y : y.ViewAs(ReducedShape(x._shape, mask, keepDim: false));
    }

    /// <summary>Sums <paramref name="x"/> down to <paramref name="shape"/> (the inverse of broadcasting).</summary>
    public static Tensor SumTo(Tensor x, int[] shape)
    {
        if (x._shape.AsSpan().SequenceEqual(shape)) return x;
        int lead = x.Rank - shape.Length;
        if (lead < 0) throw new ShapeException($"SumTo: cannot reduce shape {x.Shape} to the larger rank shape {Shape.Format(shape)}.");
        var kept = new int[x.Rank];
        for (int i = 0; i < x.Rank; i++)
        {
            int j = i - lead;
            if (j < 0) kept[i] = 1;
            else if (shape[j] == x._shape[i]) kept[i] = shape[j];
            else if (shape[j] == 1) kept[i] = 1;
            else throw new ShapeException($"SumTo: cannot reduce shape {x.Shape} to {Shape.Format(shape)}.");
        }
        Tensor y = x.DType switch
        {
            DType.Float32 => SumCore<float>(x, kept),
            DType.Float64 => SumCore<double>(x, kept),
            _ => throw Elementwise.NotFloat("SumTo", x),
        };
        return y.ViewAs(shape);
    }

    private static Tensor SumCore<T>(Tensor x, int[] keptShape) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var y = Tensor.Empty<T>(keptShape);
        var yd = y.Data<T>();
        if (y._numel == 1 && x._contiguous)
        {
            yd[0] = ParallelSum<T>.Sum(x.Data<T>(), x._offset, x._numel);
            return y;
        }
        Array.Clear(yd);
        // Output strides in input coordinates: 0 on reduced dims, so every input element adds into its slot.
        var sy = new int[x.Rank];
        for (int i = 0; i < x.Rank; i++) sy[i] = keptShape[i] == 1 ? 0 : y._strides[i];
        var k = new SumInner<T>(x.Data<T>(), yd);
        Strided.Run(x._shape, x._strides, x._offset, sy, 0, default, 0, ref k);
        return y;
    }

    /// <summary>Sum of a large contiguous range: per-chunk partial sums added in chunk order (deterministic for a given thread count).</summary>
    private sealed class ParallelSum<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        [ThreadStatic] private static ParallelSum<T>? _job;
        private T[]? _x;
        private int _o, _n;
        private readonly T[] _partial = new T[64];

        public static T Sum(T[] x, int offset, int n)
        {
            int chunks = Math.Min(64, Threads.ChunksFor(n, Elementwise.ParallelGrain));
            if (chunks <= 1) return TensorPrimitives.Sum<T>(x.AsSpan(offset, n));
            var j = _job ??= new ParallelSum<T>();
            (j._x, j._o, j._n) = (x, offset, n);
            try { Threads.For(chunks, j); }
            finally { j._x = null; }
            T total = T.Zero;
            for (int c = 0; c < chunks; c++) total += j._partial[c];
            return total;
        }

        public void Run(int chunk, int chunks)
        {
            var (s, e) = Elementwise.ChunkRange(_n, chunk, chunks);
            _partial[chunk] = e > s ? TensorPrimitives.Sum<T>(_x.AsSpan(_o + s, e - s)) : T.Zero;
        }
    }

    private readonly struct SumInner<T>(T[] x, T[] y) : IStridedInner where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Run(int n, int oa, int sa, int ob, int sb, int oc, int sc)
        {
            if (sb == 0)
            {
                if (sa == 1) { y[ob] += TensorPrimitives.Sum<T>(x.AsSpan(oa, n)); return; }
                T acc = T.Zero;
                for (int i = 0; i < n; i++) acc += x[oa + i * sa];
                y[ob] += acc;
                return;
            }
            if (sa == 1 && sb == 1)
            {
                var dst = y.AsSpan(ob, n);
                TensorPrimitives.Add<T>(dst, x.AsSpan(oa, n), dst);
                return;
            }
            for (int i = 0; i < n; i++) y[ob + i * sb] += x[oa + i * sa];
        }
    }

    /// <summary>
    /// Max (or min) along <paramref name="dim"/>: values and int64 indices with the reduced dim kept as size 1.
    /// NaN propagates (a NaN is the max), like PyTorch; ties pick the first index.
    /// </summary>
    public static (Tensor values, Tensor indices) ArgExtreme(Tensor x, int dim, bool max)
    {
        var shape = (int[])x._shape.Clone();
        shape[dim] = 1;
        return x.DType switch
        {
            DType.Float32 => ArgExtremeCore<float>(x, dim, max, shape),
            DType.Float64 => ArgExtremeCore<double>(x, dim, max, shape),
            _ => ArgExtremeLong(x, dim, max, shape),
        };
    }

    private static (Tensor, Tensor) ArgExtremeCore<T>(Tensor x, int dim, bool max, int[] shape) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var xc = x.ContiguousData();
        var xd = xc.Data<T>();
        int off = xc._offset;
        int n = x._shape[dim];
        int inner = 1;
        for (int i = dim + 1; i < x.Rank; i++) inner *= x._shape[i];
        int outer = n == 0 ? 0 : x._numel / (n * inner);
        var v = Tensor.Empty<T>(shape);
        var idx = Tensor.Empty<long>((int[])shape.Clone());
        var vd = v.Data<T>();
        var id = idx.Data<long>();
        for (int o = 0; o < outer; o++)
        {
            int baseIn = off + o * n * inner, baseOut = o * inner;
            if (inner == 1)
            {
                var row = xd.AsSpan(baseIn, n);
                int best = max ? TensorPrimitives.IndexOfMax<T>(row) : TensorPrimitives.IndexOfMin<T>(row);
                vd[baseOut] = row[best];
                id[baseOut] = best;
                continue;
            }
            for (int j = 0; j < inner; j++) { vd[baseOut + j] = xd[baseIn + j]; id[baseOut + j] = 0; }
            for (int k = 1; k < n; k++)
            {
                int rowStart = baseIn + k * inner;
                for (int j = 0; j < inner; j++)
                {
                    T cur = vd[baseOut + j], cand = xd[rowStart + j];
                    if (T.IsNaN(cur)) continue;
                    if (T.IsNaN(cand) || (max ? cand > cur : cand < cur))
                    {
                        vd[baseOut + j] = cand;
                        id[baseOut + j] = k;
                    }
                }
            }
        }
        return (v, idx);
    }

    private static (Tensor, Tensor) ArgExtremeLong(Tensor x, int dim, bool max, int[] shape)
    {
        var xc = x.ContiguousData();
        var xd = xc.Data<long>();
        int n = x._shape[dim];
        int inner = 1;
        for (int i = dim + 1; i < x.Rank; i++) inner *= x._shape[i];
        int outer = n == 0 ? 0 : x._numel / (n * inner);
        var v = Tensor.Empty<long>(shape);
        var idx = Tensor.Empty<long>((int[])shape.Clone());
        var vd = v.Data<long>();
        var id = idx.Data<long>();
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < inner; j++)
            {
                long best = xd[xc._offset + o * n * inner + j];
                int bi = 0;
                for (int k = 1; k < n; k++)
                {
                    long c = xd[xc._offset + (o * n + k) * inner + j];
                    if (max ? c > best : c < best) { best = c; bi = k; }
                }
                vd[o * inner + j] = best;
                id[o * inner + j] = bi;
            }
        return (v, idx);
    }

    /// <summary>True when every element is finite (always true for integer tensors).</summary>
    public static bool AllFinite(Tensor t)
    {
        if (!t.DType.IsFloatingPoint()) return true;
        var c = t.ContiguousData();
        return t.DType == DType.Float32 ? TensorPrimitives.IsFiniteAll<float>(c.Span<float>()) : TensorPrimitives.IsFiniteAll<double>(c.Span<double>());
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
}
