using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Backprop.Backends.Cpu;

/// <summary>
/// Vectorized float32 GELU, x·Φ(x), forward and backward. erf uses Abramowitz and Stegun 7.1.26
/// (absolute error below 1.5e-7, under float32 resolution for GELU's output), evaluated in one pass
/// over the data, every intermediate in registers; the backward reuses exp(−x²/2) for both Φ and φ.
/// </summary>
internal static class GeluKernels
{
    private const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;
    private static readonly float InvSqrt2 = (float)(1 / Math.Sqrt(2)), InvSqrt2Pi = (float)(1 / Math.Sqrt(2 * Math.PI));

    /// <summary>erf(x/√2) and exp(−x²/2) of one vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<float> ErfAndExp(Vector<float> x, out Vector<float> e)
    {
        var u = Vector.Abs(x) * new Vector<float>(InvSqrt2);
        var t = Vector<float>.One / (Vector<float>.One + u * new Vector<float>(P));
        var poly = new Vector<float>(A5) * t + new Vector<float>(A4);
        poly = poly * t + new Vector<float>(A3);
        poly = poly * t + new Vector<float>(A2);
        poly = poly * t + new Vector<float>(A1);
        poly *= t;
        e = SimdMath.Exp(-(u * u));
        var erf = Vector<float>.One - poly * e;
        return Vector.ConditionalSelect(Vector.LessThan(x, Vector<float>.Zero), -erf, erf); // odd function
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ErfAndExp(Vector512<float> x, out Vector512<float> e)
    {
        var u = Vector512.Abs(x) * Vector512.Create(InvSqrt2);
        var t = Vector512<float>.One / (Vector512<float>.One + u * Vector512.Create(P));
        var poly = Vector512.Create(A5) * t + Vector512.Create(A4);
        poly = poly * t + Vector512.Create(A3);
        poly = poly * t + Vector512.Create(A2);
        poly = poly * t + Vector512.Create(A1);
        poly *= t;
        e = SimdMath.Exp(-(u * u));
        var erf = Vector512<float>.One - poly * e;
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), -erf, erf);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ErfAndExp(float x, out float e)
    {
        float u = MathF.Abs(x) * InvSqrt2;
        float t = 1f / (1f + P * u);
        float poly = ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t;
        e = MathF.Exp(-(u * u));
        float erf = 1f - poly * e;
        return x < 0 ? -erf : erf;
    }

    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        int n = x.Length, i = 0;
        if (SimdMath.Wide)
        {
            var h = Vector512.Create(0.5f);
            for (; i <= n - 16; i += 16)
            {
                var v = Vector512.LoadUnsafe(ref xr, (nuint)i);
                var erf = ErfAndExp(v, out _);
                (v * (h + h * erf)).StoreUnsafe(ref yr, (nuint)i);
            }
        }
        var half = new Vector<float>(0.5f);
        for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
        {
            var v = Vector.LoadUnsafe(ref xr, (nuint)i);
            var erf = ErfAndExp(v, out _);
            (v * (half + half * erf)).StoreUnsafe(ref yr, (nuint)i); // y may alias x: read first
        }
        for (; i < n; i++)
        {
            float v = Unsafe.Add(ref xr, i);
            Unsafe.Add(ref yr, i) = v * (0.5f + 0.5f * ErfAndExp(v, out _));
        }
    }

    /// <summary>dx = dy·(Φ(x) + x·φ(x)).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float dyr = ref MemoryMarshal.GetReference(dy);
        ref float dxr = ref MemoryMarshal.GetReference(dx);
        int n = x.Length, i = 0;
        if (SimdMath.Wide)
        {
            var h = Vector512.Create(0.5f);
            var wc = Vector512.Create(InvSqrt2Pi);
            for (; i <= n - 16; i += 16)
            {
                var v = Vector512.LoadUnsafe(ref xr, (nuint)i);
                var erf = ErfAndExp(v, out var e);
                (Vector512.LoadUnsafe(ref dyr, (nuint)i) * (h + h * erf + v * e * wc)).StoreUnsafe(ref dxr, (nuint)i);
            }
        }
        var half = new Vector<float>(0.5f);
        var c = new Vector<float>(InvSqrt2Pi);
        for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
        {
            var v = Vector.LoadUnsafe(ref xr, (nuint)i);
            var erf = ErfAndExp(v, out var e);
            var g = half + half * erf + v * e * c;
            (Vector.LoadUnsafe(ref dyr, (nuint)i) * g).StoreUnsafe(ref dxr, (nuint)i);
        }
        for (; i < n; i++)
        {
            float v = Unsafe.Add(ref xr, i);
            float erf = ErfAndExp(v, out float e);
            Unsafe.Add(ref dxr, i) = Unsafe.Add(ref dyr, i) * (0.5f + 0.5f * erf + v * e * InvSqrt2Pi);
        }
    }
}
