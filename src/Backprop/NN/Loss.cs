using Backprop.Autograd;
using Backprop.Backends;

namespace Backprop.NN;

/// <summary>How a loss combines per-sample values.</summary>
public enum Reduction
{
    /// <summary>Average over samples (the default).</summary>
    Mean,
    /// <summary>Sum over samples.</summary>
    Sum,
    /// <summary>No reduction: one loss per sample.</summary>
    None,
}

/// <summary>Loss functions. Each is one fused op whose backward is written out, never built from a Jacobian.</summary>
public static class Loss
{
    /// <summary>
    /// Cross-entropy from raw scores (logits) [N, C] (or [C] for one sample) against int64 class
    /// indices [N] or class probabilities [N, C] (float). Computed stably through log-softmax; the
    /// gradient with respect to the logits is softmax(h) − onehot(y), divided by the number of
    /// counted samples for the mean reduction.
    /// </summary>
    /// <param name="logits">Scores [N, C].</param>
    /// <param name="target">Class indices (int64 [N]) or probabilities (float [N, C]).</param>
    /// <param name="reduction">Mean, Sum or None.</param>
    /// <param name="ignoreIndex">Samples with this class index are skipped (index targets only).</param>
    /// <param name="labelSmoothing">Mixes the target with the uniform distribution by this amount.</param>
    public static Tensor CrossEntropy(Tensor logits, Tensor target, Reduction reduction = Reduction.Mean,
        long ignoreIndex = -100, double labelSmoothing = 0)
    {
        if (logits.Rank == 1) return CrossEntropy(logits.Unsqueeze(0), target.Rank == 0 ? target.Unsqueeze(0) : target.Rank == 1 && target.DType.IsFloatingPoint() ? target.Unsqueeze(0) : target,
            reduction, ignoreIndex, labelSmoothing) is var r && reduction == Reduction.None ? r.Squeeze(0) : r;
        if (logits.Rank != 2)
            throw new ShapeException($"CrossEntropy: logits must be [N, C] (or [C]), got {logits.Shape}; reshape sequence outputs to [N·T, C].");
        if (!logits.DType.IsFloatingPoint()) throw Dispatch.NotFloat("CrossEntropy", logits);
        if (labelSmoothing < 0 || labelSmoothing > 1)
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "CrossEntropy: label smoothing must be in [0, 1].");
        int n = logits.Size(0), c = logits.Size(1);
        bool probs = target.DType.IsFloatingPoint() && target.Rank == 2;
        if (probs)
        {
            if (!target.Shape.Equals(logits.Shape))
                throw new ShapeException($"CrossEntropy: probability targets must have the logits' shape {logits.Shape}, got {target.Shape}.");
            if (target.DType != logits.DType)
                throw new ArgumentException($"CrossEntropy: probability targets are {target.DType.Name()} but logits are {logits.DType.Name()}.");
        }
        else
        {
            if (target.Rank != 1 || target.Size(0) != n)
                throw new ShapeException($"CrossEntropy: expected class indices of shape [{n}] for logits {logits.Shape}, got {target.Shape}.");
            if (target.DType != DType.Int64)
            {
                // float class labels are accepted when they are whole numbers
                var asLong = target.ToLongArray();
                var back = target.ToDoubleArray();
                for (int i = 0; i < n; i++)
                    if (asLong[i] != back[i])
                        throw new ArgumentException($"CrossEntropy: target {back[i]} at position {i} is not a class index; pass int64 indices or [N, C] probabilities.");
                target = Tensor.FromArray(asLong);
            }
        }
        return probs
            ? CrossEntropyProbabilities(logits, target, reduction, labelSmoothing)
            : CrossEntropyIndices(logits, target, reduction, ignoreIndex, labelSmoothing);
    }

    /// <summary>Fused log-softmax + negative log-likelihood for class indices: one pass forward, one pass backward, no temporaries beyond the saved log-probabilities.</summary>
    private static Tensor CrossEntropyIndices(Tensor logits, Tensor target, Reduction reduction, long ignoreIndex, double labelSmoothing)
    {
        int n = logits.Size(0), c = logits.Size(1);
        if (ignoreIndex < int.MinValue || ignoreIndex > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(ignoreIndex), ignoreIndex, "CrossEntropy: ignoreIndex must fit in 32 bits.");
        var x = logits.ContiguousData();
        var logp = Tensor.Empty(logits._shape, logits.DType, logits.Backend);
        var y = target.ContiguousData();
        var output = Tensor.Empty(reduction == Reduction.None ? ShapeCache.Intern([n]) : ShapeCache.Intern([]), logits.DType, logits.Backend);
        int counted = Dispatch.BackendOf("CrossEntropy", logits, y)
            .CrossEntropy(x.V, y.V, logp.V, output.V, (Backends.LossReduction)reduction, ignoreIndex, labelSmoothing);
        double denom = reduction == Reduction.Mean ? counted : 1;
        Engine.Record(output, "CrossEntropy", new CrossEntropyBackward(logits, logp.MarkScratch(), y, reduction, (int)ignoreIndex, denom, labelSmoothing),
            logits, saved0: logp, saved1: y);
        return output;
    }

    private readonly struct CrossEntropyBackward(Tensor logits, Tensor logp, Tensor target, Reduction reduction, int ignoreIndex, double denom,
        double eps) : IBackward
    {
        public void Backward(Tensor dy)
        {
            if (Engine.CreateGraph)
            {
                BackwardRecorded(dy);
                return;
            }
            var g = Tensor.Empty(logp._shape, logp.DType, logp.Backend);
            logp.Backend.CrossEntropyBackward(logp.V, target.V, dy.ContiguousData().V, g.V, (Backends.LossReduction)reduction, ignoreIndex, denom, eps);
            logits.AccumulateGrad(g);
        }

        /// <summary>(softmax(logits) − q)·scale per row, from recorded ops, so that it can be differentiated again.</summary>
        private void BackwardRecorded(Tensor dy)
        {
            int n = logits.Size(0), c = logits.Size(1);
            var labels = target.ToLongArray();
            var keep = new double[n];
            for (int i = 0; i < n; i++)
            {
                keep[i] = labels[i] == ignoreIndex ? 0 : 1;
                if (labels[i] == ignoreIndex) labels[i] = 0;
            }
            var q = Tensor.OneHot(Tensor.FromArray(labels), c, logits.DType) * (1 - eps) + eps / c;
            var rowWeight = Tensor.FromArray(keep).To(logits.DType).Reshape(n, 1);
            var scale = reduction == Reduction.None ? dy.Reshape(n, 1) * rowWeight : dy / denom * rowWeight;
            logits.AccumulateGrad((logits.Softmax(1) - q) * scale);
        }
    }

    /// <summary>Cross-entropy against a probability distribution per row (also differentiable in the target).</summary>
    private static Tensor CrossEntropyProbabilities(Tensor logits, Tensor target, Reduction reduction, double eps)
    {
        int n = logits.Size(0), c = logits.Size(1);
        var logp = logits.LogSoftmax(1);
        // q = (1 − ε)·p + ε/C; loss_i = −Σ_j q_ij·logp_ij, built from differentiable ops (this path is not hot)
        var q = eps == 0 ? target : target * (1 - eps) + eps / c;
        var per = -(q * logp).Sum(1);
        return reduction switch
        {
            Reduction.None => per,
            Reduction.Sum => per.Sum(),
            _ => per.Sum() / n,
        };
    }

    /// <summary>Negative log-likelihood of int64 targets [N] given log-probabilities [N, C]: −logp[i, y_i], reduced.</summary>
    public static Tensor NllLoss(Tensor logProbs, Tensor target, Reduction reduction = Reduction.Mean, long ignoreIndex = -100)
    {
        if (logProbs.Rank != 2) throw new ShapeException($"NllLoss: log-probabilities must be [N, C], got {logProbs.Shape}.");
        int n = logProbs.Size(0), c = logProbs.Size(1);
        if (target.DType != DType.Int64 || target.Rank != 1 || target.Size(0) != n)
            throw new ShapeException($"NllLoss: expected int64 class indices of shape [{n}], got {target.DType.Name()} {target.Shape}.");
        var idx = target.ToLongArray();
        var keep = new double[n];
        var safe = new long[n];
        int counted = 0;
        for (int i = 0; i < n; i++)
        {
            if (idx[i] == ignoreIndex) continue;
            if (idx[i] < 0 || idx[i] >= c)
                throw new IndexOutOfRangeException($"NllLoss: target class {idx[i]} at position {i} is out of range for {c} classes.");
            keep[i] = 1;
            safe[i] = idx[i];
            counted++;
        }
        var picked = -logProbs.Gather(1, Tensor.FromArray(safe, n, 1)).Reshape(n) * Tensor.FromArray(keep).To(logProbs.DType);
        return reduction switch
        {
            Reduction.None => picked,
            Reduction.Sum => picked.Sum(),
            // every target ignored: the mean is NaN, added rather than divided by 0 so that the gradient stays 0 (as in PyTorch)
            _ => counted == 0 ? picked.Sum() + double.NaN : picked.Sum() / counted,
        };
    }

    /// <summary>Mean squared error (pred − target)², reduced; target must have pred's shape.</summary>
    public static Tensor Mse(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean)
    {
        if (!prediction.Shape.Equals(target.Shape))
            throw new ShapeException($"Mse: prediction {prediction.Shape} and target {target.Shape} must have the same shape.");
        var d = prediction - target;
        var sq = d * d;
        return Reduced(sq, reduction);
    }

    /// <summary>
    /// Binary cross-entropy of probabilities p ∈ [0, 1] against targets t: −(t·log p + (1 − t)·log(1 − p)),
    /// with the logs clamped at −100 as in PyTorch so that p = 0 or 1 gives a finite loss.
    /// </summary>
    public static Tensor BinaryCrossEntropy(Tensor probabilities, Tensor target, Reduction reduction = Reduction.Mean)
    {
        if (!probabilities.Shape.Equals(target.Shape))
            throw new ShapeException($"BinaryCrossEntropy: probabilities {probabilities.Shape} and target {target.Shape} must have the same shape.");
        var p = probabilities;
        Tensor logP, log1mP, l;
        using (Tensor.NoGrad())
        {
            logP = p.Log().Clamp(min: -100);
            log1mP = (1 - p).Log().Clamp(min: -100);
            l = -(target * logP + (1 - target) * log1mP);
        }
        // Backward as PyTorch writes it: d/dp = (p − t) / max(p(1 − p), 1e-12) stays finite where p is
        // exactly 0 or 1 (a saturated float32 sigmoid), where the chain rule through the clamped logs
        // gives 0·∞ = NaN; d/dt = log(1 − p) − log p with the clamped logs. The 1e-12 is a float, as in PyTorch.
        Engine.Record(l, "BinaryCrossEntropy", new BinaryCrossEntropyBackward(p, target, log1mP, logP), p, target, saved0: log1mP, saved1: logP);
        return Reduced(l, reduction);
    }

    private readonly struct BinaryCrossEntropyBackward(Tensor p, Tensor t, Tensor log1mP, Tensor logP) : IBackward
    {
        public void Backward(Tensor dy)
        {
            if (p.RequiresGrad) p.AccumulateGrad(dy * (p - t) / Tensor.Maximum(p * (1 - p), p.Const(1e-12f)));
            if (!t.RequiresGrad) return;
            // d/dt: the clamped logs, recorded again when the backward builds a graph (their saved copies carry none)
            t.AccumulateGrad(Engine.CreateGraph
                ? dy * ((1 - p).Log().Clamp(min: -100) - p.Log().Clamp(min: -100))
                : dy * (log1mP - logP));
        }
    }

    /// <summary>
    /// Binary cross-entropy from logits, stable for any x: max(x, 0) − x·t + log(1 + e^−|x|).
    /// Gradient with respect to x: sigmoid(x) − t.
    /// </summary>
    public static Tensor BinaryCrossEntropyWithLogits(Tensor logits, Tensor target, Reduction reduction = Reduction.Mean)
    {
        if (!logits.Shape.Equals(target.Shape))
            throw new ShapeException($"BinaryCrossEntropyWithLogits: logits {logits.Shape} and target {target.Shape} must have the same shape.");
        var x = logits;
        // softplus(x) − x·t equals max(x,0) − x·t + log(1+e^−|x|) and has gradient sigmoid(x) − t
        var l = x.Softplus(beta: 1, threshold: double.PositiveInfinity) - x * target;
        return Reduced(l, reduction);
    }

    /// <summary>Applies a reduction to per-element losses.</summary>
    private static Tensor Reduced(Tensor perElement, Reduction reduction) => reduction switch
    {
        Reduction.None => perElement,
        Reduction.Sum => perElement.Sum(),
        _ => perElement.Mean(),
    };

    /// <summary>Losses by name, for command lines: "cross-entropy", "mse", "nll".</summary>
    public static readonly string[] Names = ["cross-entropy", "mse"];
}
