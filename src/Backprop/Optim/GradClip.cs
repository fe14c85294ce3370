using Backprop.Backends;

namespace Backprop.Optim;

/// <summary>Gradient clipping in place: by total norm (torch.nn.utils.clip_grad_norm_) or by value (clip_grad_value_).</summary>
public static class GradClip
{
    /// <summary>
    /// Scales all gradients together so that their total <paramref name="normType"/>-norm is at most
    /// <paramref name="maxNorm"/>, by maxNorm / (norm + 1e-6) when that is below 1 (PyTorch's rule).
    /// Returns the total norm before clipping. Parameters without a gradient are ignored.
    /// </summary>
    /// <param name="parameters">The parameters whose gradients are clipped.</param>
    /// <param name="maxNorm">Largest allowed total norm.</param>
    /// <param name="normType">p of the p-norm (p &gt; 0), or <see cref="double.PositiveInfinity"/> for the largest magnitude.</param>
    /// <param name="errorIfNonfinite">Throw instead of scaling when the total norm is NaN or infinite.</param>
    public static double ClipGradNorm(IReadOnlyList<Tensor> parameters, double maxNorm, double normType = 2, bool errorIfNonfinite = false)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        CheckNormArgs(maxNorm, normType);
        double acc = 0;
        for (int i = 0; i < parameters.Count; i++)
            if (GradOf(parameters[i], i) is Tensor g) acc = Accumulate(acc, g, normType);
        double total = Finish(acc, normType);
        double coef = Coefficient(total, maxNorm, errorIfNonfinite);
        if (coef < 1)
            for (int i = 0; i < parameters.Count; i++)
                if (parameters[i].Grad is Tensor g) Scale(g, coef);
        return total;
    }

    /// <summary>
    /// Scales all gradients together so that their total <paramref name="normType"/>-norm is at most
    /// <paramref name="maxNorm"/> (see the list overload). Enumerates <paramref name="parameters"/> twice.
    /// </summary>
    public static double ClipGradNorm(IEnumerable<Tensor> parameters, double maxNorm, double normType = 2, bool errorIfNonfinite = false)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters is IReadOnlyList<Tensor> list) return ClipGradNorm(list, maxNorm, normType, errorIfNonfinite);
        CheckNormArgs(maxNorm, normType);
        double acc = 0;
        int i = 0;
        foreach (var p in parameters)
            if (GradOf(p, i++) is Tensor g) acc = Accumulate(acc, g, normType);
        double total = Finish(acc, normType);
        double coef = Coefficient(total, maxNorm, errorIfNonfinite);
        if (coef < 1)
            foreach (var p in parameters)
                if (p.Grad is Tensor g) Scale(g, coef);
        return total;
    }

    /// <summary>Clamps every gradient element to [−clipValue, clipValue], in place.</summary>
    public static void ClipGradValue(IReadOnlyList<Tensor> parameters, double clipValue)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        CheckClipValue(clipValue);
        for (int i = 0; i < parameters.Count; i++)
            if (GradOf(parameters[i], i) is Tensor g) Clamp(g, clipValue);
    }

    /// <summary>Clamps every gradient element to [−clipValue, clipValue], in place.</summary>
    public static void ClipGradValue(IEnumerable<Tensor> parameters, double clipValue)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters is IReadOnlyList<Tensor> list)
        {
            ClipGradValue(list, clipValue);
            return;
        }
        CheckClipValue(clipValue);
        int i = 0;
        foreach (var p in parameters)
            if (GradOf(p, i++) is Tensor g) Clamp(g, clipValue);
    }

    private static void CheckNormArgs(double maxNorm, double normType)
    {
        if (!(maxNorm >= 0))
            throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, $"ClipGradNorm: maxNorm must be >= 0, got {maxNorm}.");
        if (!(normType > 0))
            throw new ArgumentOutOfRangeException(nameof(normType), normType, $"ClipGradNorm: normType must be > 0 or double.PositiveInfinity, got {normType}.");
    }

    private static void CheckClipValue(double clipValue)
    {
        if (!(clipValue >= 0))
            throw new ArgumentOutOfRangeException(nameof(clipValue), clipValue, $"ClipGradValue: clipValue must be >= 0, got {clipValue}.");
    }

    private static Tensor? GradOf(Tensor? p, int i)
    {
        if (p is null) throw new ArgumentException($"GradClip: parameter {i} is null.", "parameters");
        var g = p.Grad;
        if (g == null) return null;
        if (!g.IsContiguous || !g.DType.IsFloatingPoint())
            throw new ArgumentException($"GradClip: the gradient of parameter {i} (shape {g.Shape}, {g.DType.Name()}) must be a contiguous float32 or float64 tensor.", "parameters");
        return g;
    }

    private static double Coefficient(double total, double maxNorm, bool errorIfNonfinite)
    {
        if (errorIfNonfinite && !double.IsFinite(total))
            throw new InvalidOperationException(
                $"ClipGradNorm: the total norm of the gradients is {total}, so they cannot be clipped; pass errorIfNonfinite: false to scale them anyway.");
        return Math.Min(maxNorm / (total + 1e-6), 1.0);
    }

    /// <summary>Adds one gradient's share: Σ|g|ᵖ, or the running max |g| for the infinity norm.</summary>
    private static double Accumulate(double acc, Tensor g, double p)
    {
        double s = g.Backend.NormPower(g.V, p);
        if (double.IsPositiveInfinity(p)) return double.IsNaN(s) || double.IsNaN(acc) ? double.NaN : Math.Max(acc, s);
        return acc + s;
    }

    private static double Finish(double acc, double p) =>
        double.IsPositiveInfinity(p) || p == 1 ? acc : p == 2 ? Math.Sqrt(acc) : Math.Pow(acc, 1 / p);

    private static void Scale(Tensor g, double coef)
    {
        g.Backend.Unary(UnaryOp.Scale, g.V, g.V, coef);
        g.BumpVersion();
    }

    private static void Clamp(Tensor g, double c)
    {
        // [−c, c]; NaN stays NaN, as with torch.clamp
        g.Backend.Unary(UnaryOp.Clamp, g.V, g.V, -c, c);
        g.BumpVersion();
    }
}
