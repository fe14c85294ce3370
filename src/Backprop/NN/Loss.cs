using Backprop.Autograd;
using Backprop.Kernels;

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
        if (!logits.DType.IsFloatingPoint()) throw Elementwise.NotFloat("CrossEntropy", logits);
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
        var x = logits.ContiguousData();
        var logp = Tensor.Empty([n, c], logits.DType);
        if (logits.DType == DType.Float32) Tensor.Rows<float>(x.Span<float>(), logp.Span<float>(), n, c, log: true);
        else Tensor.Rows<double>(x.Span<double>(), logp.Span<double>(), n, c, log: true);

        // per-sample loss and the target distribution q (so that grad = softmax·Σq − q, = softmax − q when Σq = 1)
        var lp = logp.ToDoubleArray();
        var q = new double[n * c];
        var perSample = new double[n];
        int counted = 0;
        long[]? idx = probs ? null : target.ContiguousData().Span<long>().ToArray();
        var tp = probs ? target.ContiguousData().ToDoubleArray() : null;
        for (int i = 0; i < n; i++)
        {
            if (idx != null)
            {
                long y = idx[i];
                if (y == ignoreIndex) continue;
                if (y < 0 || y >= c)
                    throw new IndexOutOfRangeException($"CrossEntropy: target class {y} at position {i} is out of range for {c} classes.");
                for (int j = 0; j < c; j++) q[i * c + j] = labelSmoothing / c;
                q[i * c + y] += 1 - labelSmoothing;
            }
            else
                for (int j = 0; j < c; j++) q[i * c + j] = (1 - labelSmoothing) * tp![i * c + j] + labelSmoothing / c;
            counted++;
            double s = 0;
            for (int j = 0; j < c; j++)
                if (q[i * c + j] != 0) s -= q[i * c + j] * lp[i * c + j];
            perSample[i] = s;
        }
        double denom = reduction == Reduction.Mean ? (probs ? n : counted) : 1;
        var y0 = Reduce(perSample, reduction, denom, logits.DType);
        var qt = Tensor.FromArray(q, n, c).To(logits.DType);
        Engine.Record(y0, "CrossEntropy", static (nd, dy) =>
        {
            // d/dlogits = (softmax·Σq − q) · dy / denom, per row
            var sm = nd.S0!.Exp();
            var q = nd.S1!;
            var rowMass = q.Sum(1, keepDim: true);
            var g = sm * rowMass - q;
            // a mean over no counted sample (every target ignored) is NaN, but no logit affects it: zero gradient, as in PyTorch
            var scale = nd.I0 == (int)Reduction.None ? dy.Unsqueeze(1) : nd.D0 == 0 ? Tensor.ZerosLike(dy) : dy / nd.D0;
            if (nd.A!.RequiresGrad) nd.A.AccumulateGrad(g * scale);
            // probability targets: d/dp = −(1 − ε)·log softmax
            if (nd.B != null && nd.B.RequiresGrad) nd.B.AccumulateGrad(-(1 - nd.D1) * nd.S0! * scale);
        }, logits, probs ? target : null, s0: logp, s1: qt, i0: (int)reduction, d0: denom, d1: labelSmoothing);
        return y0;
    }

    private static Tensor Reduce(double[] perSample, Reduction reduction, double denom, DType dtype) => reduction switch
    {
        Reduction.None => Tensor.FromArray(perSample).To(dtype),
        Reduction.Sum => Tensor.Scalar(perSample.Sum(), dtype),
        _ => Tensor.Scalar(denom == 0 ? double.NaN : perSample.Sum() / denom, dtype),
    };

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
        return reduction switch
        {
            Reduction.None => sq,
            Reduction.Sum => sq.Sum(),
            _ => sq.Mean(),
        };
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
        Engine.Record(l, "BinaryCrossEntropy", static (n, dy) =>
        {
            var p = n.A!;
            var t = n.B!;
            if (p.RequiresGrad) p.AccumulateGrad(dy * (p - t) / Tensor.Maximum(p * (1 - p), p.Const(1e-12f)));
            if (t.RequiresGrad) t.AccumulateGrad(dy * (n.S0! - n.S1!));
        }, p, target, s0: log1mP, s1: logP);
        return reduction switch
        {
            Reduction.None => l,
            Reduction.Sum => l.Sum(),
            _ => l.Mean(),
        };
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
        return reduction switch
        {
            Reduction.None => l,
            Reduction.Sum => l.Sum(),
            _ => l.Mean(),
        };
    }

    /// <summary>Losses by name, for command lines: "cross-entropy", "mse", "nll".</summary>
    public static readonly string[] Names = ["cross-entropy", "mse"];
}
