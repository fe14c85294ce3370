using System.Numerics.Tensors;
using System.Runtime.InteropServices;

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
        if (double.IsPositiveInfinity(p))
        {
            double m = g.DType == DType.Float32 ? MaxAbs(g.Span<float>()) : MaxAbs(g.Span<double>());
            return double.IsNaN(m) || double.IsNaN(acc) ? double.NaN : Math.Max(acc, m);
        }
        if (p == 2)
            return acc + (g.DType == DType.Float32 ? SumSquares(g.Span<float>()) : TensorPrimitives.SumOfSquares(g.Span<double>()));
        if (p == 1)
            return acc + (g.DType == DType.Float32 ? SumAbs(g.Span<float>()) : TensorPrimitives.SumOfMagnitudes(g.Span<double>()));
        double s = 0;
        if (g.DType == DType.Float32) foreach (var v in g.Span<float>()) s += Math.Pow(Math.Abs(v), p);
        else foreach (var v in g.Span<double>()) s += Math.Pow(Math.Abs(v), p);
        return acc + s;
    }

    private static double Finish(double acc, double p) =>
        double.IsPositiveInfinity(p) || p == 1 ? acc : p == 2 ? Math.Sqrt(acc) : Math.Pow(acc, 1 / p);

    private static double MaxAbs(ReadOnlySpan<float> x) => x.Length == 0 ? 0 : Math.Abs(TensorPrimitives.MaxMagnitude(x));

    private static double MaxAbs(ReadOnlySpan<double> x) => x.Length == 0 ? 0 : Math.Abs(TensorPrimitives.MaxMagnitude(x));

    /// <summary>Σx² of float32 values accumulated in double, so large gradients neither overflow nor lose digits.</summary>
    private static double SumSquares(ReadOnlySpan<float> x)
    {
        var acc0 = Vector<double>.Zero;
        var acc1 = Vector<double>.Zero;
        int i = 0;
        ref float r = ref MemoryMarshal.GetReference(x);
        for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
        {
            Vector.Widen(Vector.LoadUnsafe(ref r, (nuint)i), out var lo, out var hi);
            acc0 += lo * lo;
            acc1 += hi * hi;
        }
        double s = Vector.Sum(acc0 + acc1);
        for (; i < x.Length; i++) s += (double)x[i] * x[i];
        return s;
    }

    /// <summary>Σ|x| of float32 values accumulated in double.</summary>
    private static double SumAbs(ReadOnlySpan<float> x)
    {
        var acc = Vector<double>.Zero;
        int i = 0;
        ref float r = ref MemoryMarshal.GetReference(x);
        for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
        {
            Vector.Widen(Vector.Abs(Vector.LoadUnsafe(ref r, (nuint)i)), out var lo, out var hi);
            acc += lo + hi;
        }
        double s = Vector.Sum(acc);
        for (; i < x.Length; i++) s += Math.Abs(x[i]);
        return s;
    }

    private static void Scale(Tensor g, double coef)
    {
        if (g.DType == DType.Float32) TensorPrimitives.Multiply(g.Span<float>(), (float)coef, g.Span<float>());
        else TensorPrimitives.Multiply(g.Span<double>(), coef, g.Span<double>());
        g.BumpVersion();
    }

    private static void Clamp(Tensor g, double c)
    {
        if (g.DType == DType.Float32)
        {
            var s = g.Span<float>();
            TensorPrimitives.Min(s, (float)c, s);
            TensorPrimitives.Max(s, (float)-c, s);
        }
        else
        {
            var s = g.Span<double>();
            TensorPrimitives.Min(s, c, s);
            TensorPrimitives.Max(s, -c, s);
        }
        g.BumpVersion();
    }
}
