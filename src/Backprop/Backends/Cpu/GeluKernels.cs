using System.Numerics.Tensors;

namespace Backprop.Backends.Cpu;

/// <summary>
/// Vectorized float32 GELU, x·Φ(x), forward and backward. erf uses Abramowitz and Stegun 7.1.26
/// (absolute error below 1.5e-7, under float32 resolution for GELU's output), evaluated as a chain
/// of SIMD passes over chunks that stay in L1; the backward reuses exp(−x²/2) for both Φ and φ.
/// </summary>
internal static class GeluKernels
{
    private const int Chunk = 256;
    private const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;
    private static readonly float InvSqrt2 = (float)(1 / Math.Sqrt(2)), InvSqrt2Pi = (float)(1 / Math.Sqrt(2 * Math.PI));

    /// <summary>erf(x/√2) into <paramref name="erf"/> and exp(−x²/2) into <paramref name="e"/>, for one chunk.</summary>
    private static void ErfAndExp(ReadOnlySpan<float> x, Span<float> erf, Span<float> e, Span<float> t)
    {
        TensorPrimitives.Abs(x, e);
        TensorPrimitives.Multiply(e, InvSqrt2, e);              // u = |x|/√2
        TensorPrimitives.Multiply(e, P, t);
        TensorPrimitives.Add(t, 1f, t);                         // 1 + p·u
        TensorPrimitives.Reciprocal(t, t);                      // t = 1/(1 + p·u)
        TensorPrimitives.Multiply(t, A5, erf);                  // Horner: ((((a5 t + a4) t + a3) t + a2) t + a1) t
        TensorPrimitives.Add(erf, A4, erf);
        TensorPrimitives.MultiplyAdd(erf, t, A3, erf);
        TensorPrimitives.MultiplyAdd(erf, t, A2, erf);
        TensorPrimitives.MultiplyAdd(erf, t, A1, erf);
        TensorPrimitives.Multiply(erf, t, erf);
        TensorPrimitives.Multiply(e, e, t);                     // u²
        TensorPrimitives.Negate(t, t);
        TensorPrimitives.Exp(t, e);                             // e = exp(−u²) = exp(−x²/2)
        TensorPrimitives.Multiply(erf, e, erf);
        TensorPrimitives.Subtract(1f, erf, erf);                // erf(|x|/√2) = 1 − poly·e
        TensorPrimitives.CopySign(erf, x, erf);                 // odd function
    }

    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> erf = stackalloc float[Chunk], e = stackalloc float[Chunk], t = stackalloc float[Chunk];
        for (int s = 0; s < x.Length; s += Chunk)
        {
            int m = Math.Min(Chunk, x.Length - s);
            var xs = x.Slice(s, m);
            ErfAndExp(xs, erf[..m], e[..m], t[..m]);
            TensorPrimitives.Multiply(erf[..m], 0.5f, t[..m]);
            TensorPrimitives.Add(t[..m], 0.5f, t[..m]);                 // Φ = (1 + erf)/2
            TensorPrimitives.Multiply(xs, t[..m], y.Slice(s, m));       // y may alias x: written last
        }
    }

    /// <summary>dx = dy·(Φ(x) + x·φ(x)).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx)
    {
        Span<float> erf = stackalloc float[Chunk], e = stackalloc float[Chunk], t = stackalloc float[Chunk];
        for (int s = 0; s < x.Length; s += Chunk)
        {
            int m = Math.Min(Chunk, x.Length - s);
            var xs = x.Slice(s, m);
            ErfAndExp(xs, erf[..m], e[..m], t[..m]);
            TensorPrimitives.Multiply(e[..m], InvSqrt2Pi, e[..m]);       // φ
            TensorPrimitives.Multiply(xs, e[..m], e[..m]);               // x·φ
            TensorPrimitives.MultiplyAdd(erf[..m], 0.5f, e[..m], t[..m]); // erf/2 + x·φ
            TensorPrimitives.Add(t[..m], 0.5f, t[..m]);                  // Φ + x·φ
            TensorPrimitives.Multiply(dy.Slice(s, m), t[..m], dx.Slice(s, m));
        }
    }
}
