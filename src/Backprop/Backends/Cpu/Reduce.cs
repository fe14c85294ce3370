using System.Numerics.Tensors;

namespace Backprop.Backends.Cpu;

/// <summary>Reductions: sums over any set of dimensions, extrema along one dimension, finiteness checks.</summary>
internal static class Reduce
{
    /// <summary>Sums x into y (x's shape with reduced dimensions of size 1, contiguous).</summary>
    public static void Sum<T>(in View x, in View y, bool accumulate) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var yd = y.Data<T>();
        if (y._numel == 1 && x._contiguous)
        {
            var total = ParallelSum<T>.Sum(x.Data<T>(), x._offset, x._numel);
            yd[y._offset] = accumulate ? yd[y._offset] + total : total;
            return;
        }
        if (!accumulate) y.Span<T>().Clear();
        // Output strides in input coordinates: 0 on reduced dims, so every input element adds into its slot.
        var sy = new int[x.Rank];
        for (int i = 0; i < x.Rank; i++) sy[i] = y._shape[i] == 1 ? 0 : y._strides[i];
        var k = new SumInner<T>(x.Data<T>(), yd);
        Strided.Run(x._shape, x._strides, x._offset, sy, y._offset, default, 0, ref k);
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
    /// Max (or min) along <paramref name="dim"/> of a contiguous x: values and int64 indices with the reduced dim kept as size 1.
    /// NaN propagates (a NaN is the max), like PyTorch; ties pick the first index.
    /// </summary>
    public static void ArgExtreme<T>(in View x, int dim, bool max, in View values, in View indices) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var xd = x.Data<T>();
        int off = x._offset;
        int n = x._shape[dim];
        int inner = 1;
        for (int i = dim + 1; i < x.Rank; i++) inner *= x._shape[i];
        int outer = n == 0 ? 0 : x._numel / (n * inner);
        var vd = values.Span<T>();
        var id = indices.Span<long>();
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
    }

    /// <summary>
    /// Cumulative sum along <paramref name="dim"/> of a contiguous x into contiguous y, O(n): a running
    /// sum along the dim, a whole inner block (vectorized) at a time; memory-bound, so one thread.
    /// </summary>
    public static void Cumsum<T>(in View x, int dim, bool reverse, in View y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var xd = x.Data<T>();
        var yd = y.Data<T>();
        int xo = x._offset, yo = y._offset;
        int n = x._shape[dim];
        int inner = 1;
        for (int i = dim + 1; i < x.Rank; i++) inner *= x._shape[i];
        int outer = n == 0 || inner == 0 ? 0 : x._numel / (n * inner);
        for (int o = 0; o < outer; o++)
        {
            int b = o * n * inner;
            for (int s = 0; s < n; s++)
            {
                int k = reverse ? n - 1 - s : s;
                var src = xd.AsSpan(xo + b + k * inner, inner);
                var dst = yd.AsSpan(yo + b + k * inner, inner);
                if (s == 0) src.CopyTo(dst);
                else TensorPrimitives.Add(src, yd.AsSpan(yo + b + (reverse ? k + 1 : k - 1) * inner, inner), dst);
            }
        }
    }

    /// <summary>The int64 form of <see cref="ArgExtreme{T}"/>.</summary>
    public static void ArgExtremeLong(in View x, int dim, bool max, in View values, in View indices)
    {
        var xd = x.Data<long>();
        int n = x._shape[dim];
        int inner = 1;
        for (int i = dim + 1; i < x.Rank; i++) inner *= x._shape[i];
        int outer = n == 0 ? 0 : x._numel / (n * inner);
        var vd = values.Span<long>();
        var id = indices.Span<long>();
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < inner; j++)
            {
                long best = xd[x._offset + o * n * inner + j];
                int bi = 0;
                for (int k = 1; k < n; k++)
                {
                    long c = xd[x._offset + (o * n + k) * inner + j];
                    if (max ? c > best : c < best) { best = c; bi = k; }
                }
                vd[o * inner + j] = best;
                id[o * inner + j] = bi;
            }
    }

    /// <summary>NaN, +∞ and −∞ counts of a contiguous float view.</summary>
    public static (long, long, long) CountNonFinite<T>(ReadOnlySpan<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (TensorPrimitives.IsFiniteAll(x)) return (0, 0, 0);
        long nan = 0, pos = 0, neg = 0;
        foreach (var v in x)
        {
            if (T.IsNaN(v)) nan++;
            else if (T.IsPositiveInfinity(v)) pos++;
            else if (T.IsNegativeInfinity(v)) neg++;
        }
        return (nan, pos, neg);
    }
}
