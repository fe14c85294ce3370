using Backprop.Autograd;
using Backprop.Backends;

namespace Backprop.NN;

public static partial class Functional
{
    /// <summary>
    /// Layer normalization over the last dimension (torch.nn.functional.layer_norm with normalized_shape =
    /// [n]): y = (x − mean)/√(var + eps)·weight + bias with the biased variance of each row, weight and bias
    /// [n] or null. One fused kernel forward (saving each row's mean and 1/√(var + eps)) and one backward:
    /// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·weight, dweight = Σ dy·x̂, dbias = Σ dy, the last two
    /// accumulated straight into the parameters' Grad when they are leaves.
    /// </summary>
    public static Tensor LayerNorm(Tensor x, Tensor? weight, Tensor? bias, double eps = 1e-5)
    {
        if (x.Rank == 0) throw new ShapeException($"LayerNorm: expected an input of at least 1 dimension, got shape {x.Shape}.");
        if (!x.DType.IsFloatingPoint()) throw Dispatch.NotFloat("LayerNorm", x);
        int n = x.Size(-1);
        if (weight != null && (weight.Rank != 1 || weight.Size(0) != n))
            throw new ShapeException($"LayerNorm: weight must have shape [{n}] (the input's last dimension), got {weight.Shape} for input {x.Shape}.");
        if (bias != null && (bias.Rank != 1 || bias.Size(0) != n))
            throw new ShapeException($"LayerNorm: bias must have shape [{n}] (the input's last dimension), got {bias.Shape} for input {x.Shape}.");
        if ((weight != null && weight.DType != x.DType) || (bias != null && bias.DType != x.DType))
            throw new ArgumentException($"LayerNorm: dtypes differ: input {x.DType.Name()}, weight {weight?.DType.Name() ?? "none"}, bias {bias?.DType.Name() ?? "none"}.");
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "LayerNorm: eps must be non-negative.");

        var backend = Dispatch.BackendOf("LayerNorm", x, weight ?? x);
        if (bias != null) Dispatch.BackendOf("LayerNorm", x, bias);
        var xc = x.ContiguousData();
        if (!ReferenceEquals(xc, x)) xc.MarkScratch();
        int rows = n == 0 ? 0 : x.NumElements / n;
        var y = Tensor.Empty(x._shape, x.DType, backend);
        var stats = Tensor.Empty(ShapeCache.Intern([2, rows]), x.DType, backend).MarkScratch(); // mean, rstd
        var w = weight?.ContiguousData();
        var b = bias?.ContiguousData();
        var (mean, rstd) = StatsViews(stats, rows);
        backend.LayerNormForward(xc.V, (w ?? xc).V, (b ?? xc).V, w != null, b != null, eps, y.V, mean, rstd);
        Engine.Record(y, "LayerNorm", new LayerNormBackward(x, weight, bias, xc, stats, eps), x, weight, bias, saved0: stats, saved1: xc);
        return y;
    }

    private static (View Mean, View Rstd) StatsViews(Tensor stats, int rows)
    {
        var v = stats.V;
        var shape = ShapeCache.Intern([rows]);
        var strides = ShapeCache.ContiguousStrides(shape);
        return (v.With(shape, strides, v._offset), v.With(shape, strides, v._offset + rows));
    }

    /// <summary>The fused layer-norm backward, or the same formula from recorded ops when the backward builds a graph.</summary>
    private readonly struct LayerNormBackward(Tensor x, Tensor? weight, Tensor? bias, Tensor xc, Tensor stats, double eps) : IBackward
    {
        public void Backward(Tensor dy)
        {
            if (Engine.CreateGraph)
            {
                BackwardRecorded(dy);
                return;
            }
            int n = x.Size(-1), rows = n == 0 ? 0 : x.NumElements / n;
            var dyc = dy.ContiguousData();
            bool needW = weight != null && weight.RequiresGrad, needB = bias != null && bias.RequiresGrad;
            var dx = x.RequiresGrad ? Tensor.Empty(x._shape, x.DType, x.Backend) : null;
            var tw = needW ? Engine.LeafGradTarget(weight!) : null;
            var dw = needW ? tw ?? Tensor.ZerosLike(weight!) : null;
            var tb = needB ? Engine.LeafGradTarget(bias!) : null;
            var db = needB ? tb ?? Tensor.ZerosLike(bias!) : null;
            var (mean, rstd) = StatsViews(stats, rows);
            var w = weight?.ContiguousData();
            x.Backend.LayerNormBackward(dyc.V, xc.V, (w ?? xc).V, w != null, mean, rstd,
                (dx ?? xc).V, dx != null, (dw ?? xc).V, dw != null, (db ?? xc).V, db != null);
            if (dx != null) x.AccumulateGrad(dx);
            if (dw != null)
            {
                dw.BumpVersion();
                if (tw == null) weight!.AccumulateGrad(dw);
            }
            if (db != null)
            {
                db.BumpVersion();
                if (tb == null) bias!.AccumulateGrad(db);
            }
        }

        private void BackwardRecorded(Tensor dy)
        {
            int n = x.Size(-1);
            var mu = x.Mean(-1, keepDim: true);
            var xm = x - mu;
            var rstd = ((xm * xm).Mean(-1, keepDim: true) + eps).Pow(-0.5);
            var xhat = xm * rstd;
            if (x.RequiresGrad)
            {
                var g = weight != null ? dy * weight : dy;
                x.AccumulateGrad(rstd * (g - g.Mean(-1, keepDim: true) - xhat * (g * xhat).Mean(-1, keepDim: true)));
            }
            if (weight != null && weight.RequiresGrad) weight.AccumulateGrad((dy * xhat).Reshape(-1, n).Sum(0));
            if (bias != null && bias.RequiresGrad) bias.AccumulateGrad(dy.Reshape(-1, n).Sum(0));
        }
    }
}
