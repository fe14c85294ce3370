using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace Backprop.Backends.Cpu;

// Layer normalization: one pass of TensorPrimitives calls per row, rows split across threads.
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
            int n = _n;
            T inv = T.One / T.CreateChecked(Math.Max(n, 1));
            for (int r = start; r < end; r++)
            {
                var xr = _x.AsSpan(_ox + r * n, n);
                var yr = _y.AsSpan(_oy + r * n, n);
                T mu = TensorPrimitives.Sum<T>(xr) * inv;
                TensorPrimitives.Subtract(xr, mu, yr);
                T var = TensorPrimitives.SumOfSquares<T>(yr) * inv;
                T rs = T.One / T.Sqrt(var + _eps);
                _mean![_om + r] = mu;
                _rstd![_or + r] = rs;
                TensorPrimitives.Multiply(yr, rs, yr);
                if (_hasW && _hasB) TensorPrimitives.FusedMultiplyAdd(yr, _w.AsSpan(_ow, n), _b.AsSpan(_ob, n), yr);
                else if (_hasW) TensorPrimitives.Multiply(yr, _w.AsSpan(_ow, n), yr);
                else if (_hasB) TensorPrimitives.Add(yr, _b.AsSpan(_ob, n), yr);
            }
        }

        private void BackwardRows(int start, int end, int chunk)
        {
            int n = _n;
            T inv = T.One / T.CreateChecked(Math.Max(n, 1));
            var tmp = ArrayPool<T>.Shared.Rent(2 * n);
            try
            {
                var xhat = tmp.AsSpan(0, n);
                var g = tmp.AsSpan(n, n);
                var pw = _partial.AsSpan(chunk * 2 * n, n);
                var pb = _partial.AsSpan(chunk * 2 * n + n, n);
                for (int r = start; r < end; r++)
                {
                    var xr = _x.AsSpan(_ox + r * n, n);
                    var dyr = _dy.AsSpan(_ody + r * n, n);
                    T mu = _mean![_om + r], rs = _rstd![_or + r];
                    TensorPrimitives.Subtract(xr, mu, xhat);
                    TensorPrimitives.Multiply(xhat, rs, xhat);
                    if (_dW) TensorPrimitives.FusedMultiplyAdd(dyr, xhat, pw, pw);
                    if (_dB) TensorPrimitives.Add(pb, dyr, pb);
                    if (!_dx) continue;
                    if (_hasW) TensorPrimitives.Multiply(dyr, _w.AsSpan(_ow, n), g);
                    else dyr.CopyTo(g);
                    T mg = TensorPrimitives.Sum<T>(g) * inv;
                    T mgx = TensorPrimitives.Dot<T>(g, xhat) * inv;
                    var dxr = _y.AsSpan(_oy + r * n, n);
                    TensorPrimitives.FusedMultiplyAdd(xhat, -mgx, g, dxr); // g − x̂·mean(g·x̂)
                    TensorPrimitives.Add(dxr, -mg, dxr);
                    TensorPrimitives.Multiply(dxr, rs, dxr);
                }
            }
            finally { ArrayPool<T>.Shared.Return(tmp); }
        }
    }
}
