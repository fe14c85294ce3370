using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Backprop.Backends.Cpu;

/// <summary>
/// float32 math on whole vectors, inlined into the kernels that use it (GELU, the attention's softmax), and
/// the row reductions the fused attention runs per tile row.
/// </summary>
internal static class SimdMath
{
    /// <summary>
    /// Whether the kernels take their 512-bit paths (AVX-512F present; Vector&lt;float&gt; is 256 bits wide even
    /// then, and its exp costs about 2.5x the AVX-512 one). Tests turn it off to run the portable paths.
    /// </summary>
    internal static bool Wide = Vector512.IsHardwareAccelerated && Avx512F.IsSupported;

    private const float Log2E = 1.44269504088896341f, Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
    private const float ExpMin = -87.33654f, ExpMax = 88.72283f;

    /// <summary>
    /// e^x per lane (Cephes expf: x = n·ln 2 + r, |r| ≤ ln 2 / 2, a degree-6 polynomial in r scaled by 2^n; within
    /// 2 ulp of MathF.Exp). Below ln(smallest normal) the result is 0 (e^−∞ = 0, as masked scores need); above
    /// ln(float.MaxValue) it is clamped to e^88.7.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> Exp(Vector<float> x)
    {
        var under = Vector.LessThan(x, new Vector<float>(ExpMin));
        x = Vector.Min(Vector.Max(x, new Vector<float>(ExpMin)), new Vector<float>(ExpMax));
        var fx = Vector.Floor(x * new Vector<float>(Log2E) + new Vector<float>(0.5f));
        var r = x - fx * new Vector<float>(Ln2Hi) - fx * new Vector<float>(Ln2Lo);
        var p = new Vector<float>(1.9875691500e-4f) * r + new Vector<float>(1.3981999507e-3f);
        p = p * r + new Vector<float>(8.3334519073e-3f);
        p = p * r + new Vector<float>(4.1665795894e-2f);
        p = p * r + new Vector<float>(1.6666665459e-1f);
        p = p * r + new Vector<float>(5.0000001201e-1f);
        p = p * (r * r) + r + Vector<float>.One;
        // 2^n from the exponent bits; n ≥ −126 after the clamp, and n = 128 (at the top) is split in two
        var n = Vector.ConvertToInt32(fx);
        var half = Vector.ShiftRightArithmetic(n, 1);
        var s1 = Vector.AsVectorSingle(Vector.ShiftLeft(half + new Vector<int>(127), 23));
        var s2 = Vector.AsVectorSingle(Vector.ShiftLeft(n - half + new Vector<int>(127), 23));
        return Vector.AndNot(p * s1 * s2, Vector.AsVectorSingle(under));
    }

    /// <summary>e^x per lane with AVX-512 (the same polynomial; 2^n applied by vscalefps). NaN stays NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        var under = Vector512.LessThan(x, Vector512.Create(ExpMin));
        x = Avx512F.Min(Vector512.Create(ExpMax), Avx512F.Max(Vector512.Create(ExpMin), x)); // a NaN x passes through
        var fx = Avx512F.RoundScale(x * Vector512.Create(Log2E), 0); // nearest integer
        var r = x - fx * Vector512.Create(Ln2Hi) - fx * Vector512.Create(Ln2Lo);
        var p = Vector512.Create(1.9875691500e-4f) * r + Vector512.Create(1.3981999507e-3f);
        p = p * r + Vector512.Create(8.3334519073e-3f);
        p = p * r + Vector512.Create(4.1665795894e-2f);
        p = p * r + Vector512.Create(1.6666665459e-1f);
        p = p * r + Vector512.Create(5.0000001201e-1f);
        p = p * (r * r) + r + Vector512<float>.One;
        return Vector512.AndNot(Avx512F.Scale(p, fx), under);
    }

    /// <summary>The largest of the n values at p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Max(ref float p, int n)
    {
        int i = 0;
        float m = float.NegativeInfinity;
        if (Wide && n >= 16)
        {
            var vm = Vector512.LoadUnsafe(ref p);
            for (i = 16; i <= n - 16; i += 16) vm = Avx512F.Max(vm, Vector512.LoadUnsafe(ref p, (nuint)i));
            if (i < n) vm = Avx512F.Max(vm, Vector512.LoadUnsafe(ref p, (nuint)(n - 16))); // an overlapping last vector
            var h = Avx.Max(vm.GetLower(), vm.GetUpper());
            var q = Sse.Max(h.GetLower(), h.GetUpper());
            q = Sse.Max(q, Sse.MoveHighToLow(q, q));
            q = Sse.MaxScalar(q, Sse.Shuffle(q, q, 1));
            return q.ToScalar();
        }
        if (n >= Vector<float>.Count)
        {
            var vm = Vector.LoadUnsafe(ref p);
            for (i = Vector<float>.Count; i <= n - Vector<float>.Count; i += Vector<float>.Count) vm = Vector.Max(vm, Vector.LoadUnsafe(ref p, (nuint)i));
            if (i < n) vm = Vector.Max(vm, Vector.LoadUnsafe(ref p, (nuint)(n - Vector<float>.Count))); // an overlapping last vector
            for (int l = 0; l < Vector<float>.Count; l++) m = MathF.Max(m, vm[l]);
            return m;
        }
        for (; i < n; i++) m = MathF.Max(m, Unsafe.Add(ref p, i));
        return m;
    }

    /// <summary>p[i] = e^(p[i] − shift) for the n values at p; returns their sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ExpShiftSum(ref float p, int n, float shift)
    {
        int i = 0;
        float sum;
        if (Wide)
        {
            var ws = Vector512.Create(shift);
            var wacc = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16)
            {
                var e = Exp(Vector512.LoadUnsafe(ref p, (nuint)i) - ws);
                e.StoreUnsafe(ref p, (nuint)i);
                wacc += e;
            }
            sum = Vector512.Sum(wacc);
        }
        else
        {
            var vs = new Vector<float>(shift);
            var acc = Vector<float>.Zero;
            for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            {
                var e = Exp(Vector.LoadUnsafe(ref p, (nuint)i) - vs);
                e.StoreUnsafe(ref p, (nuint)i);
                acc += e;
            }
            sum = Vector.Sum(acc);
        }
        for (; i < n; i++)
        {
            float e = MathF.Exp(Unsafe.Add(ref p, i) - shift);
            Unsafe.Add(ref p, i) = e;
            sum += e;
        }
        return sum;
    }

    /// <summary>ds[i] = p[i]·(ds[i] − d) for n values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MulShifted(ref float ds, ref float p, int n, float d)
    {
        int i = 0;
        var vd = new Vector<float>(d);
        for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            (Vector.LoadUnsafe(ref p, (nuint)i) * (Vector.LoadUnsafe(ref ds, (nuint)i) - vd)).StoreUnsafe(ref ds, (nuint)i);
        for (; i < n; i++) Unsafe.Add(ref ds, i) = Unsafe.Add(ref p, i) * (Unsafe.Add(ref ds, i) - d);
    }

    /// <summary>Σ a[i]·b[i] over n values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(ref float a, ref float b, int n)
    {
        int i = 0;
        var acc = Vector<float>.Zero;
        for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            acc += Vector.LoadUnsafe(ref a, (nuint)i) * Vector.LoadUnsafe(ref b, (nuint)i);
        float s = Vector.Sum(acc);
        for (; i < n; i++) s += Unsafe.Add(ref a, i) * Unsafe.Add(ref b, i);
        return s;
    }

    /// <summary>x[i] *= s for n values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale(ref float x, int n, float s)
    {
        int i = 0;
        var vs = new Vector<float>(s);
        for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            (Vector.LoadUnsafe(ref x, (nuint)i) * vs).StoreUnsafe(ref x, (nuint)i);
        for (; i < n; i++) Unsafe.Add(ref x, i) *= s;
    }

    /// <summary>A ref to the float at p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe ref float At(float* p) => ref Unsafe.AsRef<float>(p);
}
