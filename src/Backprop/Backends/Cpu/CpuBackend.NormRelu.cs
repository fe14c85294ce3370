using System.Numerics.Tensors;

namespace Backprop.Backends.Cpu;

/// <summary>
/// Batch normalization with the ReLU after it fused in (the CNN preset's bn-relu): the forward applies
/// the ReLU to each output row while it is still in L1 (no batch-norm output written and read back);
/// the backward takes the ReLU's gradient row by row inside batch norm's two passes (no masked gradient
/// written and read back). The per-element arithmetic is that of the unfused pair (the same ReLU and
/// ReLU-gradient kernels on the same values, the same batch-norm row kernels in the same order), so the
/// results are bit-identical to Relu(BatchNorm(x)).
/// </summary>
internal sealed partial class CpuBackend
{
    public void BatchNormReluMaxPoolForward(in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, double eps,
        in View y, in View indices, in Pool2dGeometry pool)
    {
        if (x._numel == 0) return;
        if (x.DType == DType.Float32) NormJob<float>.ForwardReluMaxPool(x, mean, invstd, weight, bias, affine, eps, y, indices, pool);
        else NormJob<double>.ForwardReluMaxPool(x, mean, invstd, weight, bias, affine, eps, y, indices, pool);
    }

    public void BatchNormReluMaxPoolBackward(in View dy, in View indices, in View x, in View mean, in View invstd, in View weight, in View bias, bool affine,
        bool inputGrad, in View dx, bool paramGrads, in View dweight, in View dbias, in Pool2dGeometry pool)
    {
        if (x._shape[1] == 0) return;
        if (x.DType == DType.Float32) NormJob<float>.BackwardReluMaxPool(dy, indices, x, mean, invstd, weight, bias, affine, inputGrad, dx, paramGrads, dweight, dbias, pool);
        else NormJob<double>.BackwardReluMaxPool(dy, indices, x, mean, invstd, weight, bias, affine, inputGrad, dx, paramGrads, dweight, dbias, pool);
    }

    public void BatchNormReluForward(in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, bool training, double eps, in View y)
    {
        if (x._numel == 0) return;
        if (x.DType == DType.Float32) NormJob<float>.ForwardRelu(x, mean, invstd, weight, bias, affine, training, eps, y);
        else NormJob<double>.ForwardRelu(x, mean, invstd, weight, bias, affine, training, eps, y);
    }

    public void BatchNormReluBackward(in View dy, in View y, in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, bool training,
        bool inputGrad, in View dx, bool paramGrads, in View dweight, in View dbias)
    {
        if (x._shape[1] == 0) return;
        if (x.DType == DType.Float32) NormJob<float>.BackwardRelu(dy, y, x, mean, invstd, weight, bias, affine, training, inputGrad, dx, paramGrads, dweight, dbias);
        else NormJob<double>.BackwardRelu(dy, y, x, mean, invstd, weight, bias, affine, training, inputGrad, dx, paramGrads, dweight, dbias);
    }
}

internal sealed unsafe partial class NormJob<T>
{
    // The fused max pooling after the ReLU (training only): forward, the pooled output and the argmax
    // offsets; backward, the pooled gradient in _dy and the offsets.
    private bool _pool;
    private Pool2dGeometry _pg;
    private View _pooled, _indices;

    [ThreadStatic] private static T[]? t_row;

    /// <summary>A per-thread row of at least <paramref name="length"/> values, grown once.</summary>
    private static T[] RowBuffer(int length)
    {
        var b = t_row;
        if (b is null || b.Length < length) t_row = b = new T[length];
        return b;
    }

    public static void ForwardReluMaxPool(in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, double eps,
        in View y, in View indices, in Pool2dGeometry pool)
    {
        var job = t_job ??= new NormJob<T>();
        job._backward = false;
        job._relu = true;
        job._pool = true;
        job._pg = pool;
        job._pooled = y;
        job._indices = indices;
        job._x = x; job._mean = mean; job._invstd = invstd; job._weight = weight; job._bias = bias; job._y = default;
        job._affine = affine; job._training = true; job._eps = eps;
        job.Execute();
    }

    public static void BackwardReluMaxPool(in View dy, in View indices, in View x, in View mean, in View invstd, in View weight, in View bias, bool affine,
        bool inputGrad, in View dx, bool paramGrads, in View dweight, in View dbias, in Pool2dGeometry pool)
    {
        var job = t_job ??= new NormJob<T>();
        job._backward = true;
        job._relu = true;
        job._pool = true;
        job._pg = pool;
        job._indices = indices;
        job._dy = dy; job._reluOut = default; job._x = x; job._mean = mean; job._invstd = invstd; job._weight = weight; job._bias = bias; job._y = dx;
        job._dweight = dweight; job._dbias = dbias;
        job._affine = affine; job._training = true; job._inputGrad = inputGrad; job._paramGrads = paramGrads;
        job.Execute();
    }

    /// <summary>
    /// Plane <paramref name="plane"/> (sample·C + channel) of the fused forward: the normalized row and its
    /// ReLU into a per-thread row (the kernels of the unfused ops), then max pooled from there into the
    /// output with PoolJob's own plane kernel: the same values and argmax offsets as the three ops.
    /// </summary>
    private void PooledRow(ReadOnlySpan<T> x, T scale, T shift, int plane)
    {
        var row = RowBuffer(x.Length).AsSpan(0, x.Length);
        ScaleShift(x, scale, shift, row);
        ReluRow(row);
        long oplane = (long)_pg.OH * _pg.OW;
        fixed (T* r = row, y = _pooled.Data<T>())
        fixed (long* idx = _indices.Data<long>())
            PoolJob<T>.MaxPlaneUnpadded(r, y + _pooled._offset + plane * oplane, idx + _indices._offset + plane * oplane, _pg);
    }

    /// <summary>The pooling's gradient of plane <paramref name="plane"/> (dy at each window's argmax, else 0) into a per-thread row.</summary>
    private ReadOnlySpan<T> ScatteredRow(int plane, int l)
    {
        var row = RowBuffer(l);
        long oplane = (long)_pg.OH * _pg.OW;
        fixed (T* r = row, dy = _dy.Data<T>())
        fixed (long* idx = _indices.Data<long>())
            PoolJob<T>.ScatterPlaneTiled(dy + _dy._offset + plane * oplane, idx + _indices._offset + plane * oplane, r, _pg);
        return row.AsSpan(0, l);
    }

    /// <summary>Channels of at most this many values keep their masked gradient whole between the two backward passes (1 MB in float32).</summary>
    private const long MaskedChannelLimit = 1 << 18;

    [ThreadStatic] private static T[]? t_masked;

    public static void ForwardRelu(in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, bool training, double eps, in View y)
    {
        var job = t_job ??= new NormJob<T>();
        job._backward = false;
        job._relu = true;
        job._x = x; job._mean = mean; job._invstd = invstd; job._weight = weight; job._bias = bias; job._y = y;
        job._affine = affine; job._training = training; job._eps = eps;
        job.Execute();
    }

    public static void BackwardRelu(in View dy, in View y, in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, bool training,
        bool inputGrad, in View dx, bool paramGrads, in View dweight, in View dbias)
    {
        var job = t_job ??= new NormJob<T>();
        job._backward = true;
        job._relu = true;
        job._dy = dy; job._reluOut = y; job._x = x; job._mean = mean; job._invstd = invstd; job._weight = weight; job._bias = bias; job._y = dx;
        job._dweight = dweight; job._dbias = dbias;
        job._affine = affine; job._training = training; job._inputGrad = inputGrad; job._paramGrads = paramGrads;
        job.Execute();
    }

    /// <summary>ReLU in place: the kernel of UnaryOp.Relu (elementwise, so any split gives the same bits).</summary>
    private static void ReluRow(Span<T> row) => new CpuOps.ReluOp<T>().Apply(row, row);

    /// <summary>A per-thread buffer of at least <paramref name="length"/> values, grown once.</summary>
    private static T[] MaskedBuffer(int length)
    {
        var b = t_masked;
        if (b is null || b.Length < length) t_masked = b = new T[length];
        return b;
    }

    /// <summary>
    /// The ReLU's gradient of dy's row at <paramref name="o"/> (the kernel of BinaryOp.ReluGrad) into
    /// buffer[at..at + l]. In training the mask comes from x: the batch-norm value is recomputed into the
    /// buffer with the forward's own row kernel, scale and shift (the same bits as then, so "y &gt; 0" is the
    /// same test, NaN included), which saves reading y; in evaluation (where the running statistics could
    /// have changed since) it reads the saved output.
    /// </summary>
    private Span<T> MaskedRow(T[] buffer, int at, int o, int l, T scale, T shift)
    {
        var row = buffer.AsSpan(at, l);
        // with the max pooling fused after it, the ReLU's output gradient is the pooling's, rebuilt here
        var dyRow = _pool ? ScatteredRow(o / l, l) : _dy.Data<T>().AsSpan(_dy._offset + o, l);
        if (_training)
        {
            ScaleShift(_x.Data<T>().AsSpan(_x._offset + o, l), scale, shift, row);
            new CpuOps.ReluGrad<T>().Apply(dyRow, row, row); // elementwise: reads each value before overwriting it
        }
        else new CpuOps.ReluGrad<T>().Apply(dyRow, _reluOut.Data<T>().AsSpan(_reluOut._offset + o, l), row);
        return row;
    }

    /// <summary>The forward's scale and shift of channel <paramref name="ch"/> (see ForwardChannel).</summary>
    private (T Scale, T Shift) ForwardScaleShift(int ch, T mean, T invstd)
    {
        T scale = _affine ? invstd * At(_weight, ch) : invstd;
        return (scale, (_affine ? At(_bias, ch) : T.Zero) - mean * scale);
    }
}
