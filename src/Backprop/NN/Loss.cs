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
    /// <summary>Sum divided by the batch size (the first dimension): <see cref="Loss.KlDiv"/> only, where it is the mathematical KL divergence.</summary>
    BatchMean,
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
        NoBatchMean("CrossEntropy", reduction);
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
            target = ClassIndices("CrossEntropy", target, "; pass int64 indices or [N, C] probabilities");
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

    /// <summary>
    /// Negative log-likelihood of class indices given log-probabilities [N, C] (or [C] with a scalar
    /// target for one sample): −logp[i, y_i], reduced. Accepts what <see cref="CrossEntropy"/> accepts
    /// for indices: int64 labels or float labels that are whole numbers; samples whose label is
    /// <paramref name="ignoreIndex"/> count neither in the sum nor in the mean's denominator.
    /// </summary>
    public static Tensor NllLoss(Tensor logProbs, Tensor target, Reduction reduction = Reduction.Mean, long ignoreIndex = -100)
    {
        NoBatchMean("NllLoss", reduction);
        if (logProbs.Rank == 1)
        {
            if (target.Rank > 1 || target.NumElements != 1)
                throw new ShapeException($"NllLoss: log-probabilities {logProbs.Shape} of one sample need one class index, got {target.Shape}.");
            var one = NllLoss(logProbs.Unsqueeze(0), target.Reshape(1), reduction, ignoreIndex);
            return reduction == Reduction.None ? one.Reshape() : one;
        }
        if (logProbs.Rank != 2) throw new ShapeException($"NllLoss: log-probabilities must be [N, C] (or [C]), got {logProbs.Shape}.");
        int n = logProbs.Size(0), c = logProbs.Size(1);
        if (target.Rank != 1 || target.Size(0) != n)
            throw new ShapeException($"NllLoss: expected class indices of shape [{n}], got {target.DType.Name()} {target.Shape}.");
        var idx = ClassIndices("NllLoss", target, "; pass int64 indices").ToLongArray();
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

    /// <summary>Class indices as int64: int64 targets as they are, float targets when every value is a whole number.</summary>
    private static Tensor ClassIndices(string who, Tensor target, string hint)
    {
        if (target.DType == DType.Int64) return target;
        var asLong = target.ToLongArray();
        var back = target.ToDoubleArray();
        for (int i = 0; i < asLong.Length; i++)
            if (asLong[i] != back[i])
                throw new ArgumentException($"{who}: target {back[i]} at position {i} is not a class index{hint}.");
        return Tensor.FromArray(asLong, [.. target.Shape.AsSpan()]);
    }

    private static void NoBatchMean(string who, Reduction reduction)
    {
        if (reduction == Reduction.BatchMean)
            throw new ArgumentException($"{who}: Reduction.BatchMean is for KlDiv only; use Mean, Sum or None.", nameof(reduction));
    }

    /// <summary>Mean squared error (pred − target)², reduced; target must have pred's shape.</summary>
    public static Tensor Mse(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean)
    {
        if (!prediction.Shape.Equals(target.Shape))
            throw new ShapeException($"Mse: prediction {prediction.Shape} and target {target.Shape} must have the same shape.");
        var d = prediction - target;
        var sq = d * d;
        return Reduced("Mse", sq, reduction);
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
        return Reduced("BinaryCrossEntropy", l, reduction);
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
    /// Binary cross-entropy from logits, stable for any x: torch.nn.functional.binary_cross_entropy_with_logits.
    /// Without weights it is softplus(x) − x·t = max(x, 0) − x·t + log(1 + e^−|x|), with gradient sigmoid(x) − t.
    /// <paramref name="posWeight"/> (broadcast over the logits, usually one value per class [C]) weighs the
    /// positive term: −w·[p·t·log σ(x) + (1 − t)·log(1 − σ(x))] = w·[(1 − t)·x + (1 + (p − 1)·t)·softplus(−x)];
    /// <paramref name="weight"/> (broadcast) rescales each element's loss.
    /// </summary>
    public static Tensor BinaryCrossEntropyWithLogits(Tensor logits, Tensor target, Reduction reduction = Reduction.Mean,
        Tensor? posWeight = null, Tensor? weight = null)
    {
        if (!logits.Shape.Equals(target.Shape))
            throw new ShapeException($"BinaryCrossEntropyWithLogits: logits {logits.Shape} and target {target.Shape} must have the same shape.");
        var x = logits;
        Tensor l;
        if (posWeight is null)
            // softplus(x) − x·t equals max(x,0) − x·t + log(1+e^−|x|) and has gradient sigmoid(x) − t
            l = x.Softplus(beta: 1, threshold: double.PositiveInfinity) - x * target;
        else
        {
            CheckBroadcast("BinaryCrossEntropyWithLogits", "posWeight", posWeight, logits);
            l = (1 - target) * x + (1 + (posWeight - 1) * target) * (-x).Softplus(beta: 1, threshold: double.PositiveInfinity);
        }
        if (weight is not null)
        {
            CheckBroadcast("BinaryCrossEntropyWithLogits", "weight", weight, logits);
            l = l * weight;
        }
        return Reduced("BinaryCrossEntropyWithLogits", l, reduction);
    }

    private static void CheckBroadcast(string who, string what, Tensor w, Tensor x)
    {
        if (w.Rank > x.Rank)
            throw new ShapeException($"{who}: {what} {w.Shape} does not broadcast to the logits' shape {x.Shape}.");
        for (int i = 1; i <= w.Rank; i++)
            if (w.Size(-i) != 1 && w.Size(-i) != x.Size(-i))
                throw new ShapeException($"{who}: {what} {w.Shape} does not broadcast to the logits' shape {x.Shape}.");
        if (w.DType != x.DType)
            throw new ArgumentException($"{who}: {what} is {w.DType.Name()} but the logits are {x.DType.Name()}.");
    }

    /// <summary>Mean absolute error |prediction − target|, reduced: torch.nn.L1Loss. The gradient where they are equal is 0.</summary>
    public static Tensor L1Loss(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean)
    {
        SameShape("L1Loss", prediction, target);
        return Reduced("L1Loss", (prediction - target).Abs(), reduction);
    }

    /// <summary>
    /// Smooth L1 loss, torch.nn.SmoothL1Loss: with d = |prediction − target|, 0.5·d²/β where d &lt; β and
    /// d − 0.5·β elsewhere; β = 0 is <see cref="L1Loss"/>.
    /// </summary>
    public static Tensor SmoothL1Loss(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean, double beta = 1.0)
    {
        SameShape("SmoothL1Loss", prediction, target);
        if (!(beta >= 0) || double.IsInfinity(beta))
            throw new ArgumentOutOfRangeException(nameof(beta), beta, $"SmoothL1Loss: beta must be a finite number >= 0, got {beta}.");
        var d = (prediction - target).Abs();
        if (beta == 0) return Reduced("SmoothL1Loss", d, reduction);
        var l = Tensor.Where(d.Lt(beta), d * d * (0.5 / beta), d - 0.5 * beta);
        return Reduced("SmoothL1Loss", l, reduction);
    }

    /// <summary>
    /// Huber loss, torch.nn.HuberLoss: with d = |prediction − target|, 0.5·d² where d &lt; δ and
    /// δ·(d − 0.5·δ) elsewhere (δ times <see cref="SmoothL1Loss"/> with β = δ).
    /// </summary>
    public static Tensor HuberLoss(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean, double delta = 1.0)
    {
        SameShape("HuberLoss", prediction, target);
        if (!(delta > 0) || double.IsInfinity(delta))
            throw new ArgumentOutOfRangeException(nameof(delta), delta, $"HuberLoss: delta must be a finite number > 0, got {delta}.");
        var d = (prediction - target).Abs();
        var l = Tensor.Where(d.Lt(delta), d * d * 0.5, (d - 0.5 * delta) * delta);
        return Reduced("HuberLoss", l, reduction);
    }

    /// <summary>
    /// Kullback-Leibler divergence, torch.nn.functional.kl_div: <paramref name="input"/> holds
    /// log-probabilities, <paramref name="target"/> probabilities (or log-probabilities with
    /// <paramref name="logTarget"/>). Pointwise t·(log t − x) (0 where t = 0), or e^t·(t − x) for log
    /// targets. <see cref="Reduction.BatchMean"/> divides the sum by the batch size (the first
    /// dimension) and is the KL divergence per sample; <see cref="Reduction.Mean"/> divides by the
    /// number of elements, as PyTorch's default does.
    /// </summary>
    public static Tensor KlDiv(Tensor input, Tensor target, Reduction reduction = Reduction.Mean, bool logTarget = false)
    {
        SameShape("KlDiv", input, target);
        Tensor l;
        if (logTarget) l = target.Exp() * (target - input);
        else
        {
            var positive = target.Gt(0);
            // xlogy(t, t): t·log t with 0 where t = 0 (log is taken of 1 there, so no −∞ enters the graph)
            var tLogT = Tensor.Where(positive, target * Tensor.Where(positive, target, target.Const(1)).Log(), target.Const(0));
            l = tLogT - target * input;
        }
        if (reduction == Reduction.BatchMean)
            return input.Rank == 0 ? l.Sum() : l.Sum() / input.Size(0);
        return Reduced("KlDiv", l, reduction);
    }

    private static void SameShape(string who, Tensor prediction, Tensor target)
    {
        if (!prediction.Shape.Equals(target.Shape))
            throw new ShapeException($"{who}: prediction {prediction.Shape} and target {target.Shape} must have the same shape.");
    }

    /// <summary>Applies a reduction to per-element losses.</summary>
    private static Tensor Reduced(string who, Tensor perElement, Reduction reduction) => reduction switch
    {
        Reduction.None => perElement,
        Reduction.Sum => perElement.Sum(),
        Reduction.Mean => perElement.Mean(),
        _ => throw new ArgumentException($"{who}: Reduction.{reduction} is for KlDiv only; use Mean, Sum or None.", nameof(reduction)),
    };

    /// <summary>Losses by name, for command lines: "cross-entropy", "mse", "nll".</summary>
    public static readonly string[] Names = ["cross-entropy", "mse"];
}
