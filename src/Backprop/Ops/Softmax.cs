using Backprop.Autograd;
using Backprop.Backends;

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
        if (!x.DType.IsFloatingPoint()) throw Dispatch.NotFloat(log ? "LogSoftmax" : "Softmax", x);
        int[] shape = x._shape; // a 0-d input gives a 0-d result, computed as one row of one
        if (x.Rank == 0) x = x.NoGraph().Reshape(1);
        bool last = d == x.Rank - 1;
        var src = (last ? x.NoGraph() : x.NoGraph().Transpose(d, -1)).ContiguousData();
        var y = src.EmptyLike();
        x.Backend.SoftmaxRows(src.V, y.V, log);
        return last ? y.ViewAs([.. shape]) : Dispatch.ToContiguous(y.Transpose(d, -1)).ViewAs([.. shape]);
    }

}
