using System.Numerics.Tensors;
using Backprop.Autograd;
using Backprop.Backends;

namespace Backprop;

// Sum, Mean, Max/Min (values and indices), Var, LogSumExp. Reductions accept any set of
// dimensions (none = all) and keepDim; their backward broadcasts the gradient back.
public partial class Tensor
{
    /// <summary>The shape of <paramref name="dy"/> with reduced dimensions put back as size 1, so it broadcasts over the input.</summary>
    private static Tensor Unreduce(Tensor dy, int[] inputShape, bool[] mask, bool keepDim)
    {
        if (keepDim) return dy;
        var kept = Dispatch.ReducedShape(inputShape, mask, keepDim: true);
        return dy.Reshape(kept);
    }

    /// <summary>Sum of all elements (a scalar).</summary>
    public Tensor Sum() => Sum([], keepDim: false);

    /// <summary>Sum over one dimension.</summary>
    public Tensor Sum(int dim, bool keepDim = false) => Sum([dim], keepDim);

    /// <summary>Sum over the given dimensions (all when empty). Of an int64 or bool tensor: an exact int64 sum (for bool, the count of true elements, as in PyTorch).</summary>
    public Tensor Sum(int[] dims, bool keepDim = false)
    {
        var mask = Dispatch.DimMask("Sum", Rank, dims);
        if (DType == DType.Int64) return IntSum(mask, keepDim);
        // a count of true elements: summed as float64 through the backend (exact: every count is below 2^53), then int64
        if (DType == DType.Bool) return Dispatch.Convert(Dispatch.Sum(Dispatch.Convert(this, DType.Float64), mask, keepDim), DType.Int64);
        var y = Dispatch.Sum(this, mask, keepDim);
        Engine.Record(y, "Sum", new SumBackward(this, mask, keepDim, 1), this);
        return y;
    }

    /// <summary>Exact int64 sum over the masked dimensions, on the host (not a hot path; not differentiable).</summary>
    private Tensor IntSum(bool[] mask, bool keepDim)
    {
        var v = ToLongArray();
        var kept = Dispatch.ReducedShape(_shape, mask, keepDim: true);
        var r = new long[Backprop.Shape.Product(kept)];
        var index = new int[Rank];
        for (int flat = 0; flat < v.Length; flat++)
        {
            int o = 0;
            for (int d = 0; d < Rank; d++) o = o * kept[d] + (mask[d] ? 0 : index[d]);
            r[o] = unchecked(r[o] + v[flat]);
            for (int d = Rank - 1; d >= 0; d--)
            {
                if (++index[d] < _shape[d]) break;
                index[d] = 0;
            }
        }
        var y = Wrap(r, kept).To(Device);
        return keepDim ? y : y.Reshape(Dispatch.ReducedShape(_shape, mask, keepDim: false));
    }

    /// <summary>Sum and mean: the gradient (times <c>scale</c>) broadcast back over the reduced dimensions.</summary>
    private readonly struct SumBackward(Tensor x, bool[] mask, bool keepDim, double scale) : IBackward
    {
        public void Backward(Tensor dy)
        {
            var g = Unreduce(dy, x._shape, mask, keepDim);
            if (scale != 1) g = Engine.CreateGraph ? g * scale : Dispatch.Scaled(g, scale);
            x.AccumulateGrad(g.Expand(x._shape));
        }
    }

    /// <summary>Mean of all elements (a scalar).</summary>
    public Tensor Mean() => Mean([], keepDim: false);

    /// <summary>Mean over one dimension.</summary>
    public Tensor Mean(int dim, bool keepDim = false) => Mean([dim], keepDim);

    /// <summary>
    /// Mean over the given dimensions (all when empty). Of a bool tensor: the fraction of true elements as float32
    /// (PyTorch refuses the mean of a bool tensor; here <c>pred.Eq(y).Mean()</c> is the accuracy).
    /// </summary>
    public Tensor Mean(int[] dims, bool keepDim = false)
    {
        if (DType == DType.Bool) return To(DType.Float32).Mean(dims, keepDim);
        var mask = Dispatch.DimMask("Mean", Rank, dims);
        long count = ReducedCount(mask);
        var y = Dispatch.Sum(this, mask, keepDim);
        Dispatch.ScaleInto(y, y, count == 0 ? double.NaN : 1.0 / count);
        Engine.Record(y, "Mean", new SumBackward(this, mask, keepDim, count == 0 ? double.NaN : 1.0 / count), this);
        return y;
    }

    private long ReducedCount(bool[] mask)
    {
        long c = 1;
        for (int i = 0; i < Rank; i++) if (mask[i]) c *= _shape[i];
        return c;
    }

    /// <summary>
    /// Variance over the given dimensions (all when empty), dividing by N − <paramref name="correction"/>
    /// (1 = unbiased, PyTorch's default; 0 = population variance).
    /// </summary>
    public Tensor Var(int[]? dims = null, int correction = 1, bool keepDim = false)
    {
        dims ??= [];
        var mask = Dispatch.DimMask("Var", Rank, dims);
        long count = ReducedCount(mask);
        var centered = this - Mean(dims, keepDim: true);
        return (centered * centered).Sum(dims, keepDim) / Math.Max(count - correction, 0);
    }

    /// <summary>Variance over one dimension.</summary>
    public Tensor Var(int dim, int correction = 1, bool keepDim = false) => Var([dim], correction, keepDim);

    /// <summary>Largest element (a scalar); the gradient is shared equally by tied maxima.</summary>
    public Tensor Max() => ExtremeAll(max: true);

    /// <summary>Smallest element (a scalar); the gradient is shared equally by tied minima.</summary>
    public Tensor Min() => ExtremeAll(max: false);

    private Tensor ExtremeAll(bool max)
    {
        string name = max ? "Max" : "Min";
        if (_numel == 0) throw new ArgumentException($"{name}: cannot reduce an empty tensor of shape {Shape}.");
        var (v, _) = Dispatch.ArgExtreme(Reshape(-1).NoGraph(), 0, max);
        var y = v.Reshape([]);
        Engine.Record(y, name, new ExtremeAllBackward(this, y), this, saved0: y);
        return y;
    }

    private readonly struct ExtremeAllBackward(Tensor x, Tensor y) : IBackward
    {
        public void Backward(Tensor dy)
        {
            var ties = x.NoGraph().Eq(y.NoGraph().To(x.DType)).To(x.DType);
            x.AccumulateGrad(Mul(ties, Div(dy, ties.Sum())));
        }
    }

    /// <summary>Largest values along <paramref name="dim"/> and their int64 indices (the first on ties).</summary>
    public (Tensor Values, Tensor Indices) Max(int dim, bool keepDim = false) => ExtremeDim(dim, keepDim, max: true);

    /// <summary>Smallest values along <paramref name="dim"/> and their int64 indices (the first on ties).</summary>
    public (Tensor Values, Tensor Indices) Min(int dim, bool keepDim = false) => ExtremeDim(dim, keepDim, max: false);

    private (Tensor, Tensor) ExtremeDim(int dim, bool keepDim, bool max)
    {
        string name = max ? "Max" : "Min";
        int d = NormalizeDim(dim, Rank, name);
        if (Rank > 0 && _shape[d] == 0) throw new ArgumentException($"{name}: cannot reduce dimension {dim} of size 0 (shape {Shape}).");
        var src = Rank == 0 ? Reshape(1) : this;
        var (v, idx) = Dispatch.ArgExtreme(src.NoGraph(), d, max);
        if (!keepDim || Rank == 0)
        {
            var shape = Rank == 0 ? Array.Empty<int>() : v._shape.Where((_, i) => i != d).ToArray();
            v = v.ViewAs(shape);
            idx = idx.ViewAs((int[])shape.Clone());
        }
        // The gradient goes to the selected index only: scatter dy into zeros of the input shape.
        Engine.Record(v, name, new ExtremeDimBackward(this, idx, d, keepDim), this, saved0: idx);
        return (v, idx);
    }

    private readonly struct ExtremeDimBackward(Tensor x, Tensor index, int dim, bool keepDim) : IBackward
    {
        public void Backward(Tensor dy)
        {
            var idx = index;
            if (!keepDim && x.Rank > 0) { dy = dy.Unsqueeze(dim); idx = idx.Unsqueeze(dim); }
            if (Engine.CreateGraph)
            {
                x.AccumulateGrad(x.Rank == 0 ? dy.Reshape([]) : ZerosLike(x).ScatterAdd(dim, idx, dy));
                return;
            }
            var g = ZerosLike(x);
            if (x.Rank == 0) g.AddInPlaceFrom(dy.Reshape([]));
            else Dispatch.ScatterAddInto(g, dim, idx, dy);
            x.AccumulateGrad(g);
        }
    }

    private void AddInPlaceFrom(Tensor src) => Dispatch.AddInPlace(this, src);

    /// <summary>Index of the largest element along <paramref name="dim"/> (int64), or of the flattened tensor when dim is null.</summary>
    public Tensor Argmax(int? dim = null, bool keepDim = false) =>
        dim is int d ? NoGraph().Max(d, keepDim).Indices : NoGraph().Reshape(-1).Max(0).Indices;

    /// <summary>Index of the smallest element along <paramref name="dim"/> (int64), or of the flattened tensor when dim is null.</summary>
    public Tensor Argmin(int? dim = null, bool keepDim = false) =>
        dim is int d ? NoGraph().Min(d, keepDim).Indices : NoGraph().Reshape(-1).Min(0).Indices;

    /// <summary>
    /// log Σ exp(x) over the given dimensions, computed stably as m + log Σ exp(x − m) with m the max.
    /// Backward: dx = dy·exp(x − y) = dy·softmax(x).
    /// </summary>
    public Tensor LogSumExp(int[] dims, bool keepDim = false)
    {
        var mask = Dispatch.DimMask("LogSumExp", Rank, dims);
        Tensor y;
        using (NoGrad())
        {
            var x = NoGraph();
            // max over the reduced dims, kept for broadcasting; infinite maxima are replaced by 0 so that
            // x − m stays NaN-free when a whole slice is −∞ (the result is then −∞, as it should be).
            var m = x;
            if (_numel == 0) m = Zeros(Dispatch.ReducedShape(_shape, mask, keepDim: true), DType); // empty sums give −∞
            else for (int i = 0; i < Rank; i++) if (mask[i]) m = m.Max(i, keepDim: true).Values;
            m = Dispatch.Map("LogSumExp", m, UnaryOp.FiniteOrZero);
            var s = Dispatch.Sum((x - m).Exp(), mask, keepDim: true).Log() + m;
            y = keepDim ? s : s.ViewAs(Dispatch.ReducedShape(_shape, mask, keepDim: false));
        }
        Engine.Record(y, "LogSumExp", new LogSumExpBackward(this, y, mask, keepDim), this, saved0: y);
        return y;
    }

    private readonly struct LogSumExpBackward(Tensor x, Tensor y, bool[] mask, bool keepDim) : IBackward
    {
        public void Backward(Tensor dy)
        {
            var yk = Unreduce(y, x._shape, mask, keepDim);
            var dyk = Unreduce(dy, x._shape, mask, keepDim);
            x.AccumulateGrad(Mul(dyk, (x - yk).Exp()));
        }
    }

    /// <summary>log Σ exp(x) over one dimension.</summary>
    public Tensor LogSumExp(int dim, bool keepDim = false) => LogSumExp([dim], keepDim);

}
