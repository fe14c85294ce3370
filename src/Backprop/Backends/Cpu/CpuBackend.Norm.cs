using System.Numerics.Tensors;

namespace Backprop.Backends.Cpu;

/// <summary>
/// Batch normalization over [N, C, L]: channels are independent, so they are split across
/// <see cref="Threads"/>; each channel is N contiguous rows of L values, reduced and mapped with SIMD
/// (sums accumulated in double across rows).
/// </summary>
internal sealed partial class CpuBackend
{
    public void BatchNormForward(in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, bool training, double eps, in View y)
    {
        if (x._numel == 0) return;
        if (x.DType == DType.Float32) NormJob<float>.Forward(x, mean, invstd, weight, bias, affine, training, eps, y);
        else NormJob<double>.Forward(x, mean, invstd, weight, bias, affine, training, eps, y);
    }

    public void BatchNormBackward(in View dy, in View x, in View mean, in View invstd, in View weight, bool affine, bool training,
        bool inputGrad, in View dx, bool paramGrads, in View dweight, in View dbias)
    {
        if (x._shape[1] == 0) return;
        if (x.DType == DType.Float32) NormJob<float>.Backward(dy, x, mean, invstd, weight, affine, training, inputGrad, dx, paramGrads, dweight, dbias);
        else NormJob<double>.Backward(dy, x, mean, invstd, weight, affine, training, inputGrad, dx, paramGrads, dweight, dbias);
    }
}

/// <summary>One batch-norm call split by channels; one reusable instance per dtype and thread, so a call allocates nothing.</summary>
internal sealed partial class NormJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
{
    [ThreadStatic] private static NormJob<T>? t_job;

    private bool _backward, _affine, _training, _inputGrad, _paramGrads, _relu;
    private double _eps;
    private View _x, _dy, _y, _mean, _invstd, _weight, _bias, _dweight, _dbias, _reluOut;

    public static void Forward(in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, bool training, double eps, in View y)
    {
        var job = t_job ??= new NormJob<T>();
        job._backward = false;
        job._relu = false;
        job._x = x; job._mean = mean; job._invstd = invstd; job._weight = weight; job._bias = bias; job._y = y;
        job._affine = affine; job._training = training; job._eps = eps;
        job.Execute();
    }

    public static void Backward(in View dy, in View x, in View mean, in View invstd, in View weight, bool affine, bool training,
        bool inputGrad, in View dx, bool paramGrads, in View dweight, in View dbias)
    {
        var job = t_job ??= new NormJob<T>();
        job._backward = true;
        job._relu = false;
        job._dy = dy; job._x = x; job._mean = mean; job._invstd = invstd; job._weight = weight; job._y = dx;
        job._dweight = dweight; job._dbias = dbias;
        job._affine = affine; job._training = training; job._inputGrad = inputGrad; job._paramGrads = paramGrads;
        job.Execute();
    }

    private void Execute()
    {
        int c = _x._shape[1];
        int chunks = Math.Min(Threads.ChunksFor(_x._numel * (_backward ? 2L : 3L), 1 << 16), c);
        try
        {
            if (chunks <= 1) RunChannels(0, c);
            else Threads.For(chunks, this);
        }
        finally
        {
            _x = _dy = _y = _mean = _invstd = _weight = _bias = _dweight = _dbias = _reluOut = _pooled = _indices = default; // hold no buffers between calls
            _pool = false;
        }
    }

    void IParallelWork.Run(int chunk, int chunks)
    {
        int c = _x._shape[1];
        RunChannels((int)((long)c * chunk / chunks), (int)((long)c * (chunk + 1) / chunks));
    }

    private void RunChannels(int start, int end)
    {
        for (int ch = start; ch < end; ch++)
        {
            if (_backward) BackwardChannel(ch);
            else ForwardChannel(ch);
        }
    }

    private static T At(in View v, int i) => v.Data<T>()[v._offset + i];

    private void ForwardChannel(int ch)
    {
        int n = _x._shape[0], c = _x._shape[1], l = _x._shape[2];
        var xd = _x.Data<T>();
        var yd = _pool ? null : _y.Data<T>(); // pooled: no batch-norm output
        T mean, invstd;
        if (_training)
        {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += double.CreateTruncating(TensorPrimitives.Sum<T>(xd.AsSpan(_x._offset + (i * c + ch) * l, l)));
            double count = (double)n * l, mu = sum / count, sq = 0;
            T m = T.CreateTruncating(mu);
            for (int i = 0; i < n; i++) sq += CenteredSquares(xd.AsSpan(_x._offset + (i * c + ch) * l, l), m);
            // the mean rounded to T is what the squares were centred on: correct the variance for the difference
            double shift = mu - double.CreateTruncating(m);
            double variance = Math.Max(sq / count - shift * shift, 0);
            mean = m;
            invstd = T.CreateTruncating(1 / Math.Sqrt(variance + _eps));
            _mean.Data<T>()[_mean._offset + ch] = mean;
            _invstd.Data<T>()[_invstd._offset + ch] = invstd;
        }
        else
        {
            mean = At(_mean, ch);
            invstd = At(_invstd, ch);
        }
        var (scale, shiftOut) = ForwardScaleShift(ch, mean, invstd);
        for (int i = 0; i < n; i++)
        {
            int o = (i * c + ch) * l;
            if (_pool)
            {
                PooledRow(xd.AsSpan(_x._offset + o, l), scale, shiftOut, i * c + ch); // batch norm, ReLU and max pooling of the row in L1
                continue;
            }
            ScaleShift(xd.AsSpan(_x._offset + o, l), scale, shiftOut, yd.AsSpan(_y._offset + o, l));
            if (_relu) ReluRow(yd.AsSpan(_y._offset + o, l)); // the ReLU after it, on the row still in L1
        }
    }

    private void BackwardChannel(int ch)
    {
        int n = _x._shape[0], c = _x._shape[1], l = _x._shape[2];
        var xd = _x.Data<T>();
        var dyd = _dy.Data<T>();
        T mean = At(_mean, ch), invstd = At(_invstd, ch);
        double sumDy = 0, sumDyCentered = 0;
        // With the ReLU before it (BatchNormRelu), dy is the ReLU's gradient of the incoming one, taken
        // here row by row: kept for the whole channel when it fits (the second pass reads it back from
        // cache), else taken again in the second pass.
        bool keep = _relu && (long)n * l <= MaskedChannelLimit;
        var masked = _relu ? MaskedBuffer(keep ? n * l : l) : null;
        var (fScale, fShift) = _relu ? ForwardScaleShift(ch, mean, invstd) : default;
        for (int i = 0; i < n; i++)
        {
            int o = (i * c + ch) * l;
            var dyRow = _relu ? MaskedRow(masked!, keep ? i * l : 0, o, l, fScale, fShift) : dyd.AsSpan(_dy._offset + o, l);
            sumDy += double.CreateTruncating(TensorPrimitives.Sum<T>(dyRow));
            sumDyCentered += CenteredDot(dyRow, xd.AsSpan(_x._offset + o, l), mean);
        }
        double s = double.CreateTruncating(invstd), sumDyXhat = sumDyCentered * s;
        if (_paramGrads)
        {
            _dweight.Data<T>()[_dweight._offset + ch] = T.CreateTruncating(sumDyXhat);
            _dbias.Data<T>()[_dbias._offset + ch] = T.CreateTruncating(sumDy);
        }
        if (!_inputGrad) return;
        double w = _affine ? double.CreateTruncating(At(_weight, ch)) : 1, count = (double)n * l, m = double.CreateTruncating(mean);
        // training: dx = w·s·(dy − Σdy/M − (x − m)·s·Σdy·x̂/M) = a·dy + b·x + k; evaluation: a·dy
        T a = T.CreateTruncating(w * s);
        T b = _training ? T.CreateTruncating(-w * s * s * sumDyXhat / count) : T.Zero;
        T k = _training ? T.CreateTruncating(w * s * (-sumDy / count + m * s * sumDyXhat / count)) : T.Zero;
        var dxd = _y.Data<T>();
        for (int i = 0; i < n; i++)
        {
            int o = (i * c + ch) * l;
            var dxRow = dxd.AsSpan(_y._offset + o, l);
            ReadOnlySpan<T> dyRow = !_relu ? dyd.AsSpan(_dy._offset + o, l)
                : keep ? masked!.AsSpan(i * l, l) : MaskedRow(masked!, 0, o, l, fScale, fShift);
            if (_training)
            {
                ScaleShift(xd.AsSpan(_x._offset + o, l), b, k, dxRow);
                TensorPrimitives.MultiplyAdd<T>(dyRow, a, dxRow, dxRow);
            }
            else TensorPrimitives.Multiply<T>(dyRow, a, dxRow);
        }
    }

    /// <summary>y = a·x + b with SIMD lanes (shared with the fused batch norm + ReLU).</summary>
    private static void ScaleShift(ReadOnlySpan<T> x, T a, T b, Span<T> y)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var av = new Vector<T>(a);
            var bv = new Vector<T>(b);
            for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
                (new Vector<T>(x.Slice(i)) * av + bv).CopyTo(y.Slice(i));
        }
        for (; i < x.Length; i++) y[i] = x[i] * a + b;
    }

    /// <summary>Σ (x − m)² with SIMD lanes, in double across lanes.</summary>
    private static double CenteredSquares(ReadOnlySpan<T> x, T m)
    {
        int i = 0;
        double total = 0;
        if (Vector.IsHardwareAccelerated && x.Length >= Vector<T>.Count)
        {
            var acc = Vector<T>.Zero;
            var mv = new Vector<T>(m);
            for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
            {
                var d = new Vector<T>(x.Slice(i)) - mv;
                acc += d * d;
            }
            for (int j = 0; j < Vector<T>.Count; j++) total += double.CreateTruncating(acc[j]);
        }
        for (; i < x.Length; i++)
        {
            double d = double.CreateTruncating(x[i] - m);
            total += d * d;
        }
        return total;
    }

    /// <summary>Σ dy·(x − m) with SIMD lanes, in double across lanes.</summary>
    private static double CenteredDot(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, T m)
    {
        int i = 0;
        double total = 0;
        if (Vector.IsHardwareAccelerated && x.Length >= Vector<T>.Count)
        {
            var acc = Vector<T>.Zero;
            var mv = new Vector<T>(m);
            for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
                acc += new Vector<T>(dy.Slice(i)) * (new Vector<T>(x.Slice(i)) - mv);
            for (int j = 0; j < Vector<T>.Count; j++) total += double.CreateTruncating(acc[j]);
        }
        for (; i < x.Length; i++) total += double.CreateTruncating(dy[i]) * double.CreateTruncating(x[i] - m);
        return total;
    }
}
