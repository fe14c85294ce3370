using System.Numerics;
using Backprop.Backends.Cpu;

namespace Backprop.Tests;

/// <summary>The vector exp behind the float32 GELU and attention kernels.</summary>
public class SimdMathTests
{
    [Fact]
    public void VectorExpIsWithinAFewUlpOfMathFExp()
    {
        var xs = new List<float>();
        for (float x = -90f; x <= 88.7f; x += 0.0137f) xs.Add(x);
        xs.AddRange([0f, -0f, 1e-30f, -1e-30f, 88.72f, -87.3f, -87.34f, -88f, -103f, float.NegativeInfinity, -1e30f]);
        int w = Vector<float>.Count;
        while (xs.Count % w != 0) xs.Add(0.5f);
        var arr = xs.ToArray();
        for (int i = 0; i < arr.Length; i += w)
        {
            var e = SimdMath.Exp(new Vector<float>(arr, i));
            for (int l = 0; l < w; l++)
            {
                float x = arr[i + l], expected = MathF.Exp(x), got = e[l];
                if (expected < 1.1754944e-38f) Assert.True(got == 0 || Math.Abs(got - expected) <= 1.2e-38f, $"exp({x}) = {got}, expected {expected}");
                else Assert.True(Math.Abs(got - expected) <= 3e-7 * expected, $"exp({x}) = {got}, expected {expected}");
            }
        }
        Assert.Equal(0f, SimdMath.Exp(new Vector<float>(float.NegativeInfinity))[0]);
    }

    [Fact]
    public void ThePortablePathsMatchTheAvx512Ones()
    {
        // GELU forward and backward, and attention, with SimdMath.Wide off (the Vector<float> loops an AVX2 or
        // ARM machine runs) against the same with it as the hardware allows
        (double[] Y, double[] G, double[] A, double[] Ga) Run()
        {
            var x = Tensor.Linspace(-9, 9, 1001).RequiresGrad_();
            var y = x.Gelu();
            y.Sum().Backward();
            var g = new Generator(5);
            var q = Tensor.Randn([1, 2, 40, 16], g).RequiresGrad_();
            var a = NN.Functional.ScaledDotProductAttention(q, Tensor.Randn([1, 2, 40, 16], g), Tensor.Randn([1, 2, 40, 16], g), causal: true);
            a.Sum().Backward();
            return (y.ToDoubleArray(), x.Grad!.ToDoubleArray(), a.ToDoubleArray(), q.Grad!.ToDoubleArray());
        }
        var wide = Run();
        bool saved = SimdMath.Wide;
        SimdMath.Wide = false;
        (double[] Y, double[] G, double[] A, double[] Ga) narrow;
        try { narrow = Run(); }
        finally { SimdMath.Wide = saved; }
        foreach (var (w, n) in new[] { (wide.Y, narrow.Y), (wide.G, narrow.G), (wide.A, narrow.A), (wide.Ga, narrow.Ga) })
            for (int i = 0; i < w.Length; i++) Assert.True(Math.Abs(w[i] - n[i]) <= 2e-6 * Math.Max(1, Math.Abs(w[i])), $"element {i}: {w[i]} vs {n[i]}");
    }

    [Fact]
    public void RowKernelsMatchScalarLoops()
    {
        var g = new Random(3);
        foreach (int n in new[] { 1, 7, 16, 33, 64, 100 })
        {
            var a = Enumerable.Range(0, n).Select(_ => (float)(g.NextDouble() * 20 - 10)).ToArray();
            var b = Enumerable.Range(0, n).Select(_ => (float)(g.NextDouble() * 2 - 1)).ToArray();
            Assert.Equal(a.Max(), SimdMath.Max(ref a[0], n));
            Assert.Equal(a.Zip(b, (x, y) => (double)x * y).Sum(), SimdMath.Dot(ref a[0], ref b[0], n), 4);
            var e = (float[])a.Clone();
            float sum = SimdMath.ExpShiftSum(ref e[0], n, 2f);
            for (int i = 0; i < n; i++) Assert.Equal(Math.Exp(a[i] - 2.0), e[i], Math.Exp(a[i] - 2.0) * 2e-6); // a[i] − 2 rounds in float
            Assert.Equal(a.Sum(x => Math.Exp(x - 2.0)), sum, a.Sum(x => Math.Exp(x - 2.0)) * 1e-6);
            var ds = (float[])b.Clone();
            SimdMath.MulShifted(ref ds[0], ref a[0], n, 0.25f);
            for (int i = 0; i < n; i++) Assert.Equal(a[i] * (b[i] - 0.25f), ds[i], 1e-5);
        }
    }
}
