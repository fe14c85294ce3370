using System.Numerics.Tensors;
using Backprop.Autograd;
using Backprop.Kernels;

namespace Backprop;

// Softmax and LogSoftmax along one dimension, numerically stable: the row maximum is subtracted
// before exponentiating (TensorPrimitives.SoftMax does not do this, so it is not used).
public partial class Tensor
{
    /// <summary>softmax(x)_i = exp(x_i − max) / Σ_j exp(x_j − max) along <paramref name="dim"/>. Backward: dx = y·(dy − Σ dy·y).</summary>
    public Tensor Softmax(int dim)
    {
        int d = NormalizeDim(dim, Rank, "Softmax");
        var y = RowWise(this, d, log: false);
        Engine.Record(y, "Softmax", new SoftmaxBackward(this, y, d), this, saved0: y);
        return y;
    }

    private readonly struct SoftmaxBackward(Tensor x, Tensor y, int dim) : IBackward
    {
        public void Backward(Tensor dy)
        {
            var s = (dy * y).Sum(dim, keepDim: true);
            x.AccumulateGrad(y * (dy - s));
        }
    }

    /// <summary>log softmax along <paramref name="dim"/>: x − max − log Σ exp(x − max). Backward: dx = dy − softmax·Σ dy.</summary>
    public Tensor LogSoftmax(int dim)
    {
        int d = NormalizeDim(dim, Rank, "LogSoftmax");
        var y = RowWise(this, d, log: true);
        Engine.Record(y, "LogSoftmax", new LogSoftmaxBackward(this, y, d), this, saved0: y);
        return y;
    }

    private readonly struct LogSoftmaxBackward(Tensor x, Tensor y, int dim) : IBackward
    {
        public void Backward(Tensor dy)
        {
            var s = dy.Sum(dim, keepDim: true);
            x.AccumulateGrad(dy - y.Exp() * s);
        }
    }

    /// <summary>Applies the row kernel along dim (moved last when it is not), returning a contiguous result.</summary>
    private static Tensor RowWise(Tensor x, int d, bool log)
    {
        if (!x.DType.IsFloatingPoint()) throw Elementwise.NotFloat(log ? "LogSoftmax" : "Softmax", x);
        int[] shape = x._shape; // a 0-d input gives a 0-d result, computed as one row of one
        if (x.Rank == 0) x = x.NoGraph().Reshape(1);
        bool last = d == x.Rank - 1;
        var src = (last ? x.NoGraph() : x.NoGraph().Transpose(d, -1)).ContiguousData();
        var y = src.EmptyLike();
        int cols = src._shape[^1];
        int rows = cols == 0 ? 0 : src._numel / cols;
        if (x.DType == DType.Float32) Rows<float>(src.Span<float>(), y.Span<float>(), rows, cols, log);
        else Rows<double>(src.Span<double>(), y.Span<double>(), rows, cols, log);
        return last ? y.ViewAs([.. shape]) : Copy.ToContiguous(y.Transpose(d, -1)).ViewAs([.. shape]);
    }

    internal static void Rows<T>(ReadOnlySpan<T> x, Span<T> y, int rows, int cols, bool log) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            var yr = y.Slice(r * cols, cols);
            T max = TensorPrimitives.Max<T>(xr);
            if (T.IsNegativeInfinity(max)) max = T.Zero; // all −∞: exp gives 0s and the division NaN, as in PyTorch
            TensorPrimitives.Subtract(xr, max, yr);
            if (log)
            {
                // y = (x − max) − log Σ exp(x − max); exp into y, sum, then recompute the shifted row
                TensorPrimitives.Exp<T>(yr, yr);
                T lse = T.Log(TensorPrimitives.Sum<T>(yr));
                // subtract max and lse separately: max + lse would round at the magnitude of max
                TensorPrimitives.Subtract(xr, max, yr);
                TensorPrimitives.Subtract(yr, lse, yr);
            }
            else
            {
                TensorPrimitives.Exp<T>(yr, yr);
                T sum = TensorPrimitives.Sum<T>(yr);
                TensorPrimitives.Divide(yr, sum, yr);
            }
        }
    }
}
