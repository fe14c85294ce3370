using System.Numerics.Tensors;

namespace Backprop.Backends.Cpu;

/// <summary>A vectorized map over equal-length spans: y = f(x).</summary>
internal interface IUnarySpan<T>
{
    void Apply(ReadOnlySpan<T> x, Span<T> y);
}

/// <summary>A vectorized map over equal-length spans: y = f(a, b).</summary>
internal interface IBinarySpan<T>
{
    void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y);
}

/// <summary>
/// Elementwise maps over tensors of any layout. Contiguous operands go straight to a SIMD span
/// kernel; strided or broadcast ones are walked by <see cref="Strided"/>, gathering short chunks
/// into stack buffers so the same span kernel does the arithmetic.
/// </summary>
internal static class Elementwise
{
    internal const int Chunk = 256;

    /// <summary>Elements per thread below which splitting a map across threads costs more than it saves.</summary>
    internal const int ParallelGrain = 1 << 16;

    // ------------------------------------------------------------------ unary

    /// <summary>Writes f(x) into <paramref name="y"/> (same shape; y may equal x).</summary>
    public static void MapInto<T, Op>(in View x, in View y, Op op) where T : unmanaged where Op : struct, IUnarySpan<T>
    {
        if (x._contiguous && y._contiguous)
        {
            int chunks = Threads.ChunksFor(x._numel, ParallelGrain);
            if (chunks > 1) ParallelMap<T, Op>.Run(x.Data<T>(), x._offset, y.Data<T>(), y._offset, x._numel, op, chunks);
            else op.Apply(x.Span<T>(), y.Span<T>());
            return;
        }
        var k = new UnaryInner<T, Op>(x.Data<T>(), y.Data<T>(), op);
        Strided.Run(x._shape, x._strides, x._offset, y._strides, y._offset, default, 0, ref k);
    }

    private struct UnaryInner<T, Op>(T[] x, T[] y, Op op) : IStridedInner where T : unmanaged where Op : struct, IUnarySpan<T>
    {
        private Op _op = op;

        public void Run(int n, int oa, int sa, int ob, int sb, int oc, int sc)
        {
            if (sa == 1 && sb == 1)
            {
                _op.Apply(x.AsSpan(oa, n), y.AsSpan(ob, n));
                return;
            }
            Span<T> tx = stackalloc T[Chunk];
            Span<T> ty = stackalloc T[Chunk];
            for (int s = 0; s < n; s += Chunk)
            {
                int m = Math.Min(Chunk, n - s);
                var vx = View(x, oa + s * sa, sa, m, tx);
                var vy = sb == 1 ? y.AsSpan(ob + s, m) : ty[..m];
                _op.Apply(vx, vy);
                if (sb != 1) Scatter(vy, y, ob + s * sb, sb);
            }
        }
    }

    // ------------------------------------------------------------------ binary

    /// <summary>Writes f(a, b) into <paramref name="y"/>; a and b must broadcast to y's shape. y may alias a or b exactly.</summary>
    public static void ZipInto<T, Op>(in View a, in View b, in View y, Op op) where T : unmanaged where Op : struct, IBinarySpan<T>
    {
        if (a._contiguous && b._contiguous && y._contiguous && a._numel == y._numel && b._numel == y._numel)
        {
            int chunks = Threads.ChunksFor(y._numel, ParallelGrain);
            if (chunks > 1) ParallelZip<T, Op>.Run(a.Data<T>(), a._offset, b.Data<T>(), b._offset, y.Data<T>(), y._offset, y._numel, op, chunks);
            else op.Apply(a.Span<T>(), b.Span<T>(), y.Span<T>());
            return;
        }
        int rank = y.Rank;
        Span<int> sa = stackalloc int[rank];
        Span<int> sb = stackalloc int[rank];
        Strided.BroadcastStrides(a, y._shape, sa);
        Strided.BroadcastStrides(b, y._shape, sb);
        var k = new BinaryInner<T, Op>(a.Data<T>(), b.Data<T>(), y.Data<T>(), op);
        Strided.Run(y._shape, sa, a._offset, sb, b._offset, y._strides, y._offset, ref k);
    }

    private struct BinaryInner<T, Op>(T[] a, T[] b, T[] y, Op op) : IStridedInner where T : unmanaged where Op : struct, IBinarySpan<T>
    {
        private Op _op = op;

        public void Run(int n, int oa, int sa, int ob, int sb, int oc, int sc)
        {
            if (sa == 1 && sb == 1 && sc == 1)
            {
                _op.Apply(a.AsSpan(oa, n), b.AsSpan(ob, n), y.AsSpan(oc, n));
                return;
            }
            Span<T> ta = stackalloc T[Chunk];
            Span<T> tb = stackalloc T[Chunk];
            Span<T> ty = stackalloc T[Chunk];
            int filledA = 0, filledB = 0;
            for (int s = 0; s < n; s += Chunk)
            {
                int m = Math.Min(Chunk, n - s);
                scoped ReadOnlySpan<T> va, vb;
                if (sa == 0) { if (filledA < m) { ta[..m].Fill(a[oa]); filledA = m; } va = ta[..m]; }
                else va = View(a, oa + s * sa, sa, m, ta);
                if (sb == 0) { if (filledB < m) { tb[..m].Fill(b[ob]); filledB = m; } vb = tb[..m]; }
                else vb = View(b, ob + s * sb, sb, m, tb);
                var vy = sc == 1 ? y.AsSpan(oc + s, m) : ty[..m];
                _op.Apply(va, vb, vy);
                if (sc != 1) Scatter(vy, y, oc + s * sc, sc);
            }
        }
    }

    /// <summary>[start, end) of chunk <paramref name="c"/> of <paramref name="chunks"/> over n elements, on 64-element boundaries.</summary>
    internal static (int Start, int End) ChunkRange(int n, int c, int chunks)
    {
        long per = ((long)n + chunks - 1) / chunks;
        per = (per + 63) & ~63L;
        int start = (int)Math.Min(n, c * per), end = (int)Math.Min(n, (c + 1) * per);
        return (start, end);
    }

    /// <summary>A reusable (per thread and type) job that maps a contiguous range in parallel.</summary>
    private sealed class ParallelMap<T, Op> : IParallelWork where T : unmanaged where Op : struct, IUnarySpan<T>
    {
        [ThreadStatic] private static ParallelMap<T, Op>? _job;
        private T[]? _x, _y;
        private int _ox, _oy, _n;
        private Op _op;

        public static void Run(T[] x, int ox, T[] y, int oy, int n, Op op, int chunks)
        {
            var j = _job ??= new ParallelMap<T, Op>();
            (j._x, j._ox, j._y, j._oy, j._n, j._op) = (x, ox, y, oy, n, op);
            try { Threads.For(chunks, j); }
            finally { j._x = j._y = null; }
        }

        public void Run(int chunk, int chunks)
        {
            var (s, e) = ChunkRange(_n, chunk, chunks);
            if (e > s) _op.Apply(_x.AsSpan(_ox + s, e - s), _y.AsSpan(_oy + s, e - s));
        }
    }

    /// <summary>A reusable (per thread and type) job that zips contiguous ranges in parallel.</summary>
    private sealed class ParallelZip<T, Op> : IParallelWork where T : unmanaged where Op : struct, IBinarySpan<T>
    {
        [ThreadStatic] private static ParallelZip<T, Op>? _job;
        private T[]? _a, _b, _y;
        private int _oa, _ob, _oy, _n;
        private Op _op;

        public static void Run(T[] a, int oa, T[] b, int ob, T[] y, int oy, int n, Op op, int chunks)
        {
            var j = _job ??= new ParallelZip<T, Op>();
            (j._a, j._oa, j._b, j._ob, j._y, j._oy, j._n, j._op) = (a, oa, b, ob, y, oy, n, op);
            try { Threads.For(chunks, j); }
            finally { j._a = j._b = j._y = null; }
        }

        public void Run(int chunk, int chunks)
        {
            var (s, e) = ChunkRange(_n, chunk, chunks);
            if (e > s) _op.Apply(_a.AsSpan(_oa + s, e - s), _b.AsSpan(_ob + s, e - s), _y.AsSpan(_oy + s, e - s));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ReadOnlySpan<T> View<T>(T[] src, int offset, int stride, int m, Span<T> tmp)
    {
        if (stride == 1) return src.AsSpan(offset, m);
        var t = tmp[..m];
        for (int i = 0; i < m; i++) t[i] = src[offset + i * stride];
        return t;
    }

    private static void Scatter<T>(ReadOnlySpan<T> v, T[] dst, int offset, int stride)
    {
        for (int i = 0; i < v.Length; i++) dst[offset + i * stride] = v[i];
    }

    internal struct Add<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Add(a, b, y);
    }

    internal struct Sub<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Subtract(a, b, y);
    }

    internal struct Mul<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Multiply(a, b, y);
    }

    internal struct Div<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Divide(a, b, y);
    }

    /// <summary>y = x · s.</summary>
    internal readonly struct Scale<T>(T s) : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Multiply(x, s, y);
    }

    /// <summary>y = x (a copy).</summary>
    internal struct Identity<T> : IUnarySpan<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => x.CopyTo(y);
    }

}
