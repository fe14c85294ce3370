using Backprop.Autograd;

namespace Backprop.NN;

// Synchronized batch normalization (torch.nn.SyncBatchNorm): training-mode batch norm whose batch
// statistics are those of the batch over all data-parallel ranks. Forward: an all-reduce of the
// per-channel sums (and count), then of the per-channel sums of squared deviations from the global
// mean (two passes, in float64, so the variance has no cancellation), then the fused normalization
// kernel with those statistics. Backward: the local Σdy and Σdy·x̂ (the weight and bias gradients,
// which data-parallel training then averages like every other gradient), and an all-reduce of both,
// weighted by the rank's share, for the input gradient.
public static partial class Functional
{
    /// <summary>
    /// Training-mode batch normalization of x [N, C] or [N, C, *] with the mean and (biased) variance
    /// of the batch over every rank of <paramref name="sync"/>: y = (x − mean)/√(var + eps)·weight + bias.
    /// The running statistics, when given, are updated with the global statistics (the same on every
    /// rank). With <see cref="LocalBatchNormSync"/> it equals <see cref="BatchNorm"/> in training.
    /// </summary>
    public static Tensor SyncBatchNorm(Tensor x, BatchNormSync sync, Tensor? runningMean, Tensor? runningVar, Tensor? weight = null,
        Tensor? bias = null, double momentum = 0.1, double eps = 1e-5)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(sync);
        if (!x.DType.IsFloatingPoint()) throw Dispatch.NotFloat("SyncBatchNorm", x);
        if (x.Rank < 2) throw new ShapeException($"SyncBatchNorm: expected an input [N, C] or [N, C, ...], got {x.Shape}.");
        if ((weight is null) != (bias is null)) throw new ArgumentException("SyncBatchNorm: give both weight and bias, or neither.");
        if ((runningMean is null) != (runningVar is null)) throw new ArgumentException("SyncBatchNorm: give both running statistics, or neither.");
        if (eps <= 0 || !double.IsFinite(eps)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "SyncBatchNorm: eps must be positive.");
        int n = x.Size(0), c = x.Size(1), l = c == 0 || n == 0 ? 0 : x.NumElements / (n * c);
        foreach (var (name, t) in new[] { ("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVar) })
        {
            if (t is null) continue;
            if (t.Rank != 1 || t.Size(0) != c)
                throw new ShapeException($"SyncBatchNorm: {name} must have shape [{c}] for an input {x.Shape} with {c} channels, got {t.Shape}.");
            Dispatch.CheckSameDType("SyncBatchNorm", x, t);
            Dispatch.BackendOf("SyncBatchNorm", x, t);
        }
        var x3 = x.ContiguousData().NoGraph().Reshape(n, c, l);
        Tensor mean, invstd;
        double count;
        using (Tensor.NoGrad())
        {
            var xd = x3.To(DType.Float64);
            var sums = sync.AllReduceSum(Tensor.Concat([xd.Sum([0, 2]), Tensor.Full([1], (double)n * l, DType.Float64)]));
            count = sums.Slice(0, c, c + 1).ItemDouble();
            if (count <= 1)
                throw new ShapeException($"SyncBatchNorm: training needs more than one value per channel over all ranks, got {count} (this rank's input {x.Shape}).");
            var mu = sums.Slice(0, 0, c) / count;
            var centered = xd - mu.Reshape(1, c, 1);
            var variance = sync.AllReduceSum((centered * centered).Sum([0, 2])) / count;
            mean = mu.To(x.DType).ContiguousData();
            invstd = (variance + eps).Pow(-0.5).To(x.DType).ContiguousData();
            if (runningMean is not null)
            {
                runningMean.Mul_(1 - momentum).Add_(mean, momentum);
                runningVar!.Mul_(1 - momentum).Add_((variance * (count / (count - 1))).To(x.DType), momentum);
            }
        }
        var y = Tensor.Empty(x._shape, x.DType, x.Backend);
        var w = weight?.ContiguousData();
        var b = bias?.ContiguousData();
        // the kernel's evaluation form: normalize with the statistics given
        x.Backend.BatchNormForward(x3.V, mean.V, invstd.V, w?.V ?? default, b?.V ?? default, weight is not null, false, eps, y.Reshape(n, c, l).V);
        Engine.Record(y, "SyncBatchNorm", new SyncBatchNormBackward(x, weight, bias, mean, invstd, sync, count, eps), x, weight, bias, saved0: mean, saved1: invstd);
        return y;
    }

    /// <summary>
    /// dbias = Σ dy and dweight = Σ dy·x̂ over this rank's part; dx = w·invstd·(dy − Σ̄dy − x̂·Σ̄dy·x̂), where
    /// Σ̄ is the sum over all ranks, each rank's sums weighted by its share, divided by (share · count):
    /// the gradient of the whole batch's mean loss, scaled as this rank's local loss is.
    /// </summary>
    private readonly struct SyncBatchNormBackward(Tensor x, Tensor? weight, Tensor? bias, Tensor mean, Tensor invstd, BatchNormSync sync,
        double count, double eps) : IBackward
    {
        public void Backward(Tensor dy)
        {
            int n = x.Size(0), c = x.Size(1), l = x.NumElements / Math.Max(1, n * c);
            if (Engine.CreateGraph)
            {
                Recorded(dy, n, c, l);
                return;
            }
            var dy3 = dy.ContiguousData().NoGraph().Reshape(n, c, l);
            var x3 = x.ContiguousData().NoGraph().Reshape(n, c, l);
            // the local sums, from the fused kernel's evaluation form (dweight = Σdy·x̂, dbias = Σdy)
            var sumDyXhat = Tensor.Empty([c], x.DType, x.Backend);
            var sumDy = Tensor.Empty([c], x.DType, x.Backend);
            var wc = weight?.ContiguousData();
            x.Backend.BatchNormBackward(dy3.V, x3.V, mean.V, invstd.V, wc?.V ?? default, weight is not null, false,
                false, default, true, sumDyXhat.V, sumDy.V);
            if (weight is not null)
            {
                if (weight.RequiresGrad) weight.AccumulateGrad(sumDyXhat);
                if (bias!.RequiresGrad) bias.AccumulateGrad(sumDy);
            }
            if (!x.RequiresGrad) return;
            Tensor dx;
            using (Tensor.NoGrad())
            {
                double share = sync.LocalShare;
                var both = sync.AllReduceSum(Tensor.Concat([sumDy, sumDyXhat]).To(DType.Float64) * share) / (share * count);
                var scale = weight is null ? invstd : weight.NoGraph() * invstd;
                var a = (scale.To(DType.Float64) * both.Slice(0, 0, c)).To(x.DType).Reshape(1, c, 1);
                var bb = (scale.To(DType.Float64) * both.Slice(0, c, 2 * c)).To(x.DType).Reshape(1, c, 1);
                var xhat = (x3 - mean.Reshape(1, c, 1)) * invstd.Reshape(1, c, 1);
                dx = scale.Reshape(1, c, 1) * dy3 - a - xhat * bb;
            }
            x.AccumulateGrad(dx.Reshape([.. x.Shape.AsSpan()]));
        }

        // The sum over the ranks as a differentiable op: the local part carries the graph, the other
        // ranks' part is a constant (second derivatives see this rank's dependence only).
        private Tensor Reduced(Tensor local) => local + (sync.AllReduceSum(local.NoGraph()) - local.NoGraph());

        private void Recorded(Tensor dy, int n, int c, int l)
        {
            var x3 = x.Reshape(n, c, l);
            var dy3 = dy.Reshape(n, c, l);
            int[] dims = [0, 2];
            var mu = (Reduced(x3.Sum(dims)) / count).Reshape(1, c, 1);
            var centered = x3 - mu;
            var s = ((Reduced((centered * centered).Sum(dims)) / count) + eps).Pow(-0.5).Reshape(1, c, 1);
            var xhat = centered * s;
            if (weight is not null && weight.RequiresGrad) weight.AccumulateGrad((dy3 * xhat).Sum(dims));
            if (bias is not null && bias.RequiresGrad) bias.AccumulateGrad(dy3.Sum(dims));
            if (!x.RequiresGrad) return;
            double share = sync.LocalShare;
            var scale = weight is null ? s : weight.Reshape(1, c, 1) * s;
            var meanDy = (Reduced(dy3.Sum(dims) * share) / (share * count)).Reshape(1, c, 1);
            var meanDyXhat = (Reduced((dy3 * xhat).Sum(dims) * share) / (share * count)).Reshape(1, c, 1);
            x.AccumulateGrad((scale * (dy3 - meanDy - xhat * meanDyXhat)).Reshape([.. x.Shape.AsSpan()]));
        }
    }
}
