using Backprop.Backends;
using Backprop.Autograd;

namespace Backprop.NN;

// Batch normalization over the channel dimension of [N, C, ...]: one fused kernel forward (channel
// statistics and the affine map in one call), one fused kernel backward, and the same backward as
// ordinary recorded ops under createGraph (the batch statistics recomputed from x, so the second
// derivative sees them depend on x).
public static partial class Functional
{
    /// <summary>
    /// Batch normalization (torch.nn.functional.batch_norm) of x [N, C] or [N, C, *] over every
    /// dimension but the channel dimension 1: y = (x − mean)/√(var + eps)·weight + bias. In training
    /// the mean and (biased) variance are the batch's, and the running statistics, when given, are
    /// updated in place: running = (1 − momentum)·running + momentum·batch, with the unbiased variance.
    /// Otherwise the running statistics normalize. <paramref name="weight"/> and <paramref name="bias"/>
    /// ([C]) are both given or both null.
    /// </summary>
    public static Tensor BatchNorm(Tensor x, Tensor? runningMean, Tensor? runningVar, Tensor? weight = null, Tensor? bias = null,
        bool training = false, double momentum = 0.1, double eps = 1e-5)
        => BatchNormCore(x, runningMean, runningVar, weight, bias, training, momentum, eps, relu: false);

    // Batch norm, and with relu the ReLU after it as one op (BatchNormRelu in NormalizationRelu.cs).
    private static Tensor BatchNormCore(Tensor x, Tensor? runningMean, Tensor? runningVar, Tensor? weight, Tensor? bias,
        bool training, double momentum, double eps, bool relu, Pool2dGeometry? pool = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (!x.DType.IsFloatingPoint()) throw Dispatch.NotFloat("BatchNorm", x);
        if (x.Rank < 2) throw new ShapeException($"BatchNorm: expected an input [N, C] or [N, C, ...], got {x.Shape}.");
        if ((weight is null) != (bias is null)) throw new ArgumentException("BatchNorm: give both weight and bias, or neither.");
        if ((runningMean is null) != (runningVar is null)) throw new ArgumentException("BatchNorm: give both running statistics, or neither.");
        if (!training && runningMean is null) throw new ArgumentException("BatchNorm: evaluation needs the running mean and variance.");
        if (eps <= 0 || !double.IsFinite(eps)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "BatchNorm: eps must be positive.");
        int n = x.Size(0), c = x.Size(1), l = c == 0 || n == 0 ? 0 : x.NumElements / (n * c);
        foreach (var (name, t) in new[] { ("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVar) })
        {
            if (t is null) continue;
            if (t.Rank != 1 || t.Size(0) != c)
                throw new ShapeException($"BatchNorm: {name} must have shape [{c}] for an input {x.Shape} with {c} channels, got {t.Shape}.");
            Dispatch.CheckSameDType("BatchNorm", x, t);
            Dispatch.BackendOf("BatchNorm", x, t);
        }
        if (training && (long)n * l <= 1)
            throw new ShapeException($"BatchNorm: training needs more than one value per channel, got an input {x.Shape}.");
        var x3 = x.ContiguousData().NoGraph().Reshape(n, c, l);
        Tensor mean, invstd;
        if (training)
        {
            mean = Tensor.Empty([c], x.DType, x.Backend);
            invstd = Tensor.Empty([c], x.DType, x.Backend);
        }
        else
        {
            using (Tensor.NoGrad())
            {
                mean = runningMean!.ContiguousData().NoGraph();
                invstd = (runningVar!.NoGraph() + eps).Pow(-0.5);
            }
        }
        var w = weight?.ContiguousData();
        var b = bias?.ContiguousData();
        Tensor y, indices = null!;
        if (pool is { } pg)
        {
            // with the max pooling after the ReLU (training, tiling windows): only the pooled output exists
            y = Tensor.Empty([n, c, pg.OH, pg.OW], x.DType, x.Backend);
            indices = Tensor.Empty([n, c, pg.OH, pg.OW], DType.Int64, x.Backend);
            x.Backend.BatchNormReluMaxPoolForward(x3.V, mean.V, invstd.V, w?.V ?? default, b?.V ?? default, weight is not null, eps, y.V, indices.V, pg);
        }
        else
        {
            y = Tensor.Empty(x._shape, x.DType, x.Backend);
            if (relu)
                x.Backend.BatchNormReluForward(x3.V, mean.V, invstd.V, w?.V ?? default, b?.V ?? default, weight is not null, training, eps,
                    y.Reshape(n, c, l).V);
            else
                x.Backend.BatchNormForward(x3.V, mean.V, invstd.V, w?.V ?? default, b?.V ?? default, weight is not null, training, eps,
                    y.Reshape(n, c, l).V); // a view of the new output
        }
        if (training)
        {
            mean.BumpVersion();
            invstd.BumpVersion();
            if (runningMean is not null)
                using (Tensor.NoGrad())
                {
                    double count = (double)n * l;
                    // the unbiased batch variance, from invstd = 1/√(var + eps)
                    var variance = (invstd.Pow(-2) - eps) * (count / (count - 1));
                    runningMean.Mul_(1 - momentum).Add_(mean, momentum);
                    runningVar!.Mul_(1 - momentum).Add_(variance, momentum);
                }
        }
        if (pool is { } pool2)
            Engine.Record(y, "BatchNormReluMaxPool2d", new BatchNormReluMaxPoolBackward(x, weight, bias, mean, invstd, indices, pool2, eps), x, weight, bias,
                saved0: mean, saved1: indices);
        else if (relu) Engine.Record(y, "BatchNormRelu", new BatchNormReluBackward(x, weight, bias, mean, invstd, y, training, eps), x, weight, bias, saved0: mean, saved1: y);
        else Engine.Record(y, "BatchNorm", new BatchNormBackward(x, weight, bias, mean, invstd, training, eps), x, weight, bias, saved0: mean, saved1: invstd);
        return y;
    }

    /// <summary>
    /// dbias = Σ dy, dweight = Σ dy·x̂, and dx = w·invstd·(dy − mean(dy) − x̂·mean(dy·x̂)) in training
    /// (w·invstd·dy in evaluation), sums and means over all but the channel dimension.
    /// </summary>
    private readonly struct BatchNormBackward(Tensor x, Tensor? weight, Tensor? bias, Tensor mean, Tensor invstd, bool training, double eps) : IBackward
    {
        public void Backward(Tensor dy)
        {
            int n = x.Size(0), c = x.Size(1), l = x.NumElements / Math.Max(1, n * c);
            bool inputGrad = x.RequiresGrad, paramGrads = weight is not null && (weight.RequiresGrad || bias!.RequiresGrad);
            if (Engine.CreateGraph)
            {
                Recorded(dy, n, c, l);
                return;
            }
            var dy3 = dy.ContiguousData().NoGraph().Reshape(n, c, l);
            var x3 = x.ContiguousData().NoGraph().Reshape(n, c, l);
            var dx = inputGrad ? Tensor.Empty(x._shape, x.DType, x.Backend) : null;
            var dw = paramGrads ? Tensor.Empty([c], x.DType, x.Backend) : null;
            var db = paramGrads ? Tensor.Empty([c], x.DType, x.Backend) : null;
            var wc = weight?.ContiguousData();
            x.Backend.BatchNormBackward(dy3.V, x3.V, mean.V, invstd.V, wc?.V ?? default, weight is not null, training,
                inputGrad, dx is null ? default : dx.Reshape(n, c, l).V, paramGrads, dw?.V ?? default, db?.V ?? default);
            if (dx is not null) x.AccumulateGrad(dx);
            if (dw is not null)
            {
                weight!.AccumulateGrad(dw);
                bias!.AccumulateGrad(db!);
            }
        }

        internal void Recorded(Tensor dy, int n, int c, int l)
        {
            var x3 = x.Reshape(n, c, l);
            var dy3 = dy.Reshape(n, c, l);
            int[] dims = [0, 2];
            Tensor mu, s;
            if (training)
            {
                mu = x3.Mean(dims, keepDim: true);
                var centered = x3 - mu;
                s = ((centered * centered).Mean(dims, keepDim: true) + eps).Pow(-0.5);
            }
            else
            {
                mu = mean.NoGraph().Reshape(1, c, 1);
                s = invstd.NoGraph().Reshape(1, c, 1);
            }
            var xhat = (x3 - mu) * s;
            if (weight is not null && weight.RequiresGrad) weight.AccumulateGrad((dy3 * xhat).Sum(dims));
            if (bias is not null && bias.RequiresGrad) bias.AccumulateGrad(dy3.Sum(dims));
            if (!x.RequiresGrad) return;
            var scale = weight is null ? s : weight.Reshape(1, c, 1) * s;
            var dx = training
                ? scale * (dy3 - dy3.Mean(dims, keepDim: true) - xhat * (dy3 * xhat).Mean(dims, keepDim: true))
                : scale * dy3;
            x.AccumulateGrad(dx.Reshape([.. x.Shape.AsSpan()]));
        }
    }
}
