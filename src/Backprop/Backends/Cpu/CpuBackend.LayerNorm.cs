using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace Backprop.Backends.Cpu;

// Layer normalization: each row in fused vector loops (forward: mean, centred sum of squares, output;
// backward: the sums, then dx), rows split across threads.
internal sealed partial class CpuBackend
{
    public void LayerNormForward(in View x, in View weight, in View bias, bool hasWeight, bool hasBias, double eps, in View y, in View mean, in View rstd)
    {
        if (x.DType == DType.Float32) LayerNormJob<float>.Forward(x, weight, bias, hasWeight, hasBias, eps, y, mean, rstd);
        else LayerNormJob<double>.Forward(x, weight, bias, hasWeight, hasBias, eps, y, mean, rstd);
    }

    public void LayerNormBackward(in View dy, in View x, in View weight, bool hasWeight, in View mean, in View rstd,
        in View dx, bool computeDx, in View dWeight, bool computeDWeight, in View dBias, bool computeDBias)
    {
        if (x.DType == DType.Float32) LayerNormJob<float>.Backward(dy, x, weight, hasWeight, mean, rstd, dx, computeDx, dWeight, computeDWeight, dBias, computeDBias);
        else LayerNormJob<double>.Backward(dy, x, weight, hasWeight, mean, rstd, dx, computeDx, dWeight, computeDWeight, dBias, computeDBias);
    }

    /// <summary>A reusable (per thread and type) job over row ranges; in backward each chunk sums its own dW and db rows.</summary>
    private sealed class LayerNormJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        [ThreadStatic] private static LayerNormJob<T>? _job;
        private T[]? _x, _y, _w, _b, _mean, _rstd, _dy, _partial;
        private int _ox, _oy, _ow, _ob, _om, _or, _ody, _rows, _n;
        private bool _hasW, _hasB, _backward, _dx, _dW, _dB;
        private T _eps;

        public static void Forward(in View x, in View weight, in View bias, bool hasW, bool hasB, double eps, in View y, in View mean, in View rstd)
        {
            var j = _job ??= new LayerNormJob<T>();
            int n = x._shape[^1];
            j._rows = n == 0 ? 0 : x._numel / n;
            j._n = n;
            (j._x, j._ox, j._y, j._oy) = (x.Data<T>(), x._offset, y.Data<T>(), y._offset);
            (j._mean, j._om, j._rstd, j._or) = (mean.Data<T>(), mean._offset, rstd.Data<T>(), rstd._offset);
            (j._hasW, j._hasB, j._backward, j._eps) = (hasW, hasB, false, T.CreateChecked(eps));
            if (hasW) (j._w, j._ow) = (weight.Data<T>(), weight._offset);
            if (hasB) (j._b, j._ob) = (bias.Data<T>(), bias._offset);
            try { Threads.For(Threads.ChunksFor((long)j._rows * n, 16384), j); }
            finally { j._x = j._y = j._w = j._b = j._mean = j._rstd = null; }
        }

        public static void Backward(in View dy, in View x, in View weight, bool hasW, in View mean, in View rstd,
            in View dx, bool computeDx, in View dW, bool computeDW, in View dB, bool computeDB)
        {
            var j = _job ??= new LayerNormJob<T>();
            int n = x._shape[^1];
            j._rows = n == 0 ? 0 : x._numel / n;
            j._n = n;
            (j._x, j._ox, j._dy, j._ody) = (x.Data<T>(), x._offset, dy.Data<T>(), dy._offset);
            (j._mean, j._om, j._rstd, j._or) = (mean.Data<T>(), mean._offset, rstd.Data<T>(), rstd._offset);
            (j._hasW, j._hasB, j._backward, j._dx, j._dW, j._dB) = (hasW, false, true, computeDx, computeDW, computeDB);
            if (hasW) (j._w, j._ow) = (weight.Data<T>(), weight._offset);
            if (computeDx) (j._y, j._oy) = (dx.Data<T>(), dx._offset);
            int chunks = Threads.ChunksFor((long)j._rows * n, 16384);
            // each chunk's Σ dy·x̂ and Σ dy: 2n values per chunk, summed below in chunk order (deterministic)
            j._partial = ArrayPool<T>.Shared.Rent(Math.Max(1, chunks * 2 * n));
            try
            {
                j._partial.AsSpan(0, chunks * 2 * n).Clear();
                Threads.For(chunks, j);
                for (int c = 0; c < chunks; c++)
                {
                    if (computeDW) TensorPrimitives.Add(dW.Span<T>(), j._partial.AsSpan(c * 2 * n, n), dW.Span<T>());
                    if (computeDB) TensorPrimitives.Add(dB.Span<T>(), j._partial.AsSpan(c * 2 * n + n, n), dB.Span<T>());
                }
            }
            finally
            {
                ArrayPool<T>.Shared.Return(j._partial);
                j._x = j._y = j._w = j._dy = j._mean = j._rstd = j._partial = null;
            }
        }

        public void Run(int chunk, int chunks)
        {
            long per = ((long)_rows + chunks - 1) / chunks;
            int start = (int)Math.Min(_rows, chunk * per), end = (int)Math.Min(_rows, (chunk + 1) * per);
            if (_backward) BackwardRows(start, end, chunk);
            else ForwardRows(start, end);
        }

        private void ForwardRows(int start, int end)
        {
            int n = _n, w = Vector<T>.Count;
            T inv = T.One / T.CreateChecked(Math.Max(n, 1));
            ref T w0 = ref _hasW ? ref _w![_ow] : ref Unsafe.NullRef<T>();
            ref T b0 = ref _hasB ? ref _b![_ob] : ref Unsafe.NullRef<T>();
            for (int r = start; r < end; r++)
            {
                ref T x = ref _x![_ox + r * n];
                ref T y = ref _y![_oy + r * n];
                // two passes over the row (it stays in L1): the mean, then the centred sum of squares
                int i = 0;
                var vs = Vector<T>.Zero;
                for (; i <= n - w; i += w) vs += Vector.LoadUnsafe(ref x, (nuint)i);
                T sum = Vector.Sum(vs);
                for (; i < n; i++) sum += Unsafe.Add(ref x, i);
                T mu = sum * inv;
                var vmu = new Vector<T>(mu);
                vs = Vector<T>.Zero;
                for (i = 0; i <= n - w; i += w)
                {
                    var c = Vector.LoadUnsafe(ref x, (nuint)i) - vmu;
                    vs += c * c;
                }
                T ss = Vector.Sum(vs);
                for (; i < n; i++)
                {
                    T c = Unsafe.Add(ref x, i) - mu;
                    ss += c * c;
                }
                T rs = T.One / T.Sqrt(ss * inv + _eps);
                _mean![_om + r] = mu;
                _rstd![_or + r] = rs;
                var vrs = new Vector<T>(rs);
                for (i = 0; i <= n - w; i += w)
                {
                    var v = (Vector.LoadUnsafe(ref x, (nuint)i) - vmu) * vrs;
                    if (_hasW) v *= Vector.LoadUnsafe(ref w0, (nuint)i);
                    if (_hasB) v += Vector.LoadUnsafe(ref b0, (nuint)i);
                    v.StoreUnsafe(ref y, (nuint)i);
                }
                for (; i < n; i++)
                {
                    T v = (Unsafe.Add(ref x, i) - mu) * rs;
                    if (_hasW) v *= Unsafe.Add(ref w0, i);
                    if (_hasB) v += Unsafe.Add(ref b0, i);
                    Unsafe.Add(ref y, i) = v;
                }
            }
        }

        private void BackwardRows(int start, int end, int chunk)
        {
            int n = _n, w = Vector<T>.Count;
            T inv = T.One / T.CreateChecked(Math.Max(n, 1));
            ref T pw = ref _partial![chunk * 2 * n];
            ref T pb = ref _partial![chunk * 2 * n + n];
            ref T w0 = ref _hasW ? ref _w![_ow] : ref Unsafe.NullRef<T>();
            for (int r = start; r < end; r++)
            {
                ref T x = ref _x![_ox + r * n];
                ref T dy = ref _dy![_ody + r * n];
                T mu = _mean![_om + r], rs = _rstd![_or + r];
                var vmu = new Vector<T>(mu);
                var vrs = new Vector<T>(rs);
                // pass 1: x̂ = (x − mean)·rstd and g = dy·weight; the weight and bias sums, Σ g and Σ g·x̂
                var sg = Vector<T>.Zero;
                var sgx = Vector<T>.Zero;
                int i = 0;
                for (; i <= n - w; i += w)
                {
                    var xh = (Vector.LoadUnsafe(ref x, (nuint)i) - vmu) * vrs;
                    var d = Vector.LoadUnsafe(ref dy, (nuint)i);
                    if (_dW) (Vector.LoadUnsafe(ref pw, (nuint)i) + d * xh).StoreUnsafe(ref pw, (nuint)i);
                    if (_dB) (Vector.LoadUnsafe(ref pb, (nuint)i) + d).StoreUnsafe(ref pb, (nuint)i);
                    var g = _hasW ? d * Vector.LoadUnsafe(ref w0, (nuint)i) : d;
                    sg += g;
                    sgx += g * xh;
                }
                T mg = Vector.Sum(sg), mgx = Vector.Sum(sgx);
                for (; i < n; i++)
                {
                    T xh = (Unsafe.Add(ref x, i) - mu) * rs;
                    T d = Unsafe.Add(ref dy, i);
                    if (_dW) Unsafe.Add(ref pw, i) += d * xh;
                    if (_dB) Unsafe.Add(ref pb, i) += d;
                    T g = _hasW ? d * Unsafe.Add(ref w0, i) : d;
                    mg += g;
                    mgx += g * xh;
                }
                if (!_dx) continue;
                mg *= inv;
                mgx *= inv;
                // pass 2: dx = rstd·(g − mean(g) − x̂·mean(g·x̂))
                ref T dx = ref _y![_oy + r * n];
                var vmg = new Vector<T>(mg);
                var vmgx = new Vector<T>(mgx);
                for (i = 0; i <= n - w; i += w)
                {
                    var xh = (Vector.LoadUnsafe(ref x, (nuint)i) - vmu) * vrs;
                    var d = Vector.LoadUnsafe(ref dy, (nuint)i);
                    var g = _hasW ? d * Vector.LoadUnsafe(ref w0, (nuint)i) : d;
                    ((g - vmg - xh * vmgx) * vrs).StoreUnsafe(ref dx, (nuint)i);
                }
                for (; i < n; i++)
                {
                    T xh = (Unsafe.Add(ref x, i) - mu) * rs;
                    T d = Unsafe.Add(ref dy, i);
                    T g = _hasW ? d * Unsafe.Add(ref w0, i) : d;
                    Unsafe.Add(ref dx, i) = (g - mg - xh * mgx) * rs;
                }
            }
        }
    }
}
