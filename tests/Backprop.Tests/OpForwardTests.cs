using Backprop.Backends.Cpu;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>Forward values of each op against hand-computed numbers.</summary>
public class OpForwardTests
{
    private static readonly Tensor X = Tensor.FromArray([-2f, -0.5f, 0f, 1f, 3f]);

    [Fact]
    public void ElementwiseMath()
    {
        Close(X.ToArray().Select(v => Math.Exp(v)).ToArray(), X.Exp());
        Close([Math.Log(0.5), 0, Math.Log(4)], Tensor.FromArray([0.5f, 1f, 4f]).Log());
        Close([0.5, 1, 2], Tensor.FromArray([0.25f, 1f, 4f]).Sqrt());
        Close([2, 0.5, 0, 1, 3], X.Abs());
        Close([-1, -1, 0, 1, 1], X.Sign());
        Close([-1, -0.5, 0, 1, 1], X.Clamp(-1, 1));
        Close([4, 0.25, 0, 1, 9], X.Pow(2));
        Close([8, 1, 0, 1, 27], Tensor.FromArray([2f, 1f, 0f, 1f, 3f]).Pow(3));
        Close([2, 9], Tensor.FromArray([4f, 3f]).Pow(Tensor.FromArray([0.5f, 2f])));
        Close([-1, -0.5, 0, 1, 3], Tensor.Maximum(X, Tensor.Scalar(-1)));
        Close([-2, -0.5, 0, 0, 0], Tensor.Minimum(X, Tensor.Scalar(0)));
        Close([1, -0.5, 1, 1, 3], Tensor.Where(X.Lt(-1).Add(X.Eq(0)), Tensor.Scalar(1), X));
        Close([0, 0, 1, 1, 1], X.Ge(Tensor.Scalar(0)));
    }

    [Fact]
    public void Activations()
    {
        Close(X.ToArray().Select(v => Math.Tanh(v)).ToArray(), X.Tanh());
        Close(X.ToArray().Select(v => 1 / (1 + Math.Exp(-v))).ToArray(), X.Sigmoid());
        Close([0, 0, 0, 1, 3], X.Relu());
        Close([-0.2, -0.05, 0, 1, 3], X.LeakyRelu(0.1));
        // GELU values from x·Φ(x)
        Close([-0.04550026, -0.15426877, 0, 0.84134475, 2.99595031], X.Gelu(), 1e-6);
        Close([-0.04540231, -0.15428599, 0, 0.84119199, 2.99636261], X.Gelu(approximateTanh: true), 1e-6);
        Close(X.ToArray().Select(v => Math.Log(1 + Math.Exp(v))).ToArray(), X.Softplus());
        Close([100], Tensor.FromArray([100f]).Softplus()); // linear above the threshold, no overflow
    }

    [Fact]
    public void Float32GeluKernelMatchesTheFloat64Reference()
    {
        // the SIMD float path (fast erf) against the exact double path, forward and backward, across ranges and chunk boundaries
        var xs = Tensor.Linspace(-12, 12, 3001);
        var y32 = xs.Gelu().ToDoubleArray();
        var y64 = xs.To(DType.Float64).Gelu().ToDoubleArray();
        for (int i = 0; i < y32.Length; i++) Assert.True(Math.Abs(y32[i] - y64[i]) < 2e-6 * Math.Max(1, Math.Abs(y64[i])), $"x={xs[i]}: {y32[i]} vs {y64[i]}");
        var x32 = xs.Clone().RequiresGrad_();
        x32.Gelu().Sum().Backward();
        var x64 = xs.To(DType.Float64).RequiresGrad_();
        x64.Gelu().Sum().Backward();
        var g32 = x32.Grad!.ToDoubleArray();
        var g64 = x64.Grad!.ToDoubleArray();
        for (int i = 0; i < g32.Length; i++) Assert.True(Math.Abs(g32[i] - g64[i]) < 2e-6, $"x={xs[i]}: {g32[i]} vs {g64[i]}");
        Assert.True(float.IsNaN(Tensor.FromArray([float.NaN]).Gelu().Item()));
    }

    [Fact]
    public void PowGradientsAtZeroAreFiniteWhereTheFunctionIsFlat()
    {
        var x = Tensor.FromArray([0.0, 2.0]).RequiresGrad_();
        x.Pow(0).Sum().Backward();
        Assert.Equal(new[] { 0.0, 0.0 }, x.Grad!.ToDoubleArray());

        var a = Tensor.FromArray([0.0, 0.0, 0.0, 2.0]).RequiresGrad_();
        var b = Tensor.FromArray([0.0, 1.0, 2.0, 0.0]).RequiresGrad_();
        a.Pow(b).Sum().Backward();
        Assert.Equal(new[] { 0.0, 1.0, 0.0, 0.0 }, a.Grad!.ToDoubleArray());   // b·a^(b−1), 0 where b = 0
        Assert.Equal(new[] { 0.0, 0.0, 0.0, Math.Log(2) }, b.Grad!.ToDoubleArray()); // a^b·log a, 0 where a = 0
    }

    [Fact]
    public void ActivationsOfEmptyTensors()
    {
        foreach (var f in new Func<Tensor, Tensor>[] { t => t.Sigmoid(), t => t.Tanh(), t => t.Relu(), t => t.Gelu(), t => t.Softplus() })
        {
            var x = Tensor.Zeros([2, 0], DType.Float64).RequiresGrad_();
            var y = f(x);
            Assert.Equal(new[] { 2, 0 }, y.Shape.ToArray());
            y.Backward(Tensor.Zeros([2, 0], DType.Float64));
            Assert.Equal(new[] { 2, 0 }, x.Grad!.Shape.ToArray());
        }
    }

    [Fact]
    public void ErfIsAccurate()
    {
        Assert.True(Math.Abs(SpecialFunctions.Erf(1) - 0.8427007929497149) < 1e-15);
        Assert.True(Math.Abs(SpecialFunctions.Erf(0.5) - 0.5204998778130465) < 1e-15);
        Assert.True(Math.Abs(SpecialFunctions.Erf(-3) + 0.9999779095030014) < 1e-15);
        Assert.True(Math.Abs(SpecialFunctions.Erfc(4) / 1.541725790028002e-08 - 1) < 1e-13);
        Assert.True(Math.Abs(SpecialFunctions.Erf(2) - 0.9953222650189527) < 1e-15);
        Assert.True(Math.Abs(SpecialFunctions.ErfFast(0.7f) - 0.6778011938374184) < 2e-7);
    }

    [Fact]
    public void SoftmaxIsStableAndNormalized()
    {
        var big = Tensor.FromArray([1000f, 1001f, 1002f]);
        Close([0.09003057, 0.24472847, 0.66524096], big.Softmax(0), 1e-6);
        Close([-2.40760596, -1.40760596, -0.40760596], big.LogSoftmax(0), 1e-6);
        var m = Tensor.Randn([4, 5], new Generator(1));
        Close(Enumerable.Repeat(1.0, 5).ToArray(), m.Softmax(0).Sum(0), 1e-6);
        Close(Enumerable.Repeat(1.0, 4).ToArray(), m.Softmax(1).Sum(1), 1e-6);
        Close(m.Softmax(1).Log().ToDoubleArray(), m.LogSoftmax(1), 1e-5);
        var negInf = Tensor.FromArray([float.NegativeInfinity, 0f]);
        Close([0, 1], negInf.Softmax(0));
    }

    [Fact]
    public void SoftmaxOfAScalarIsAScalar()
    {
        var x = Tensor.Scalar(2.5, DType.Float64).RequiresGrad_();
        var p = x.Softmax(0);
        var lp = x.LogSoftmax(-1);
        Assert.Equal(0, p.Rank);
        Assert.Equal(0, lp.Rank);
        Assert.Equal(1.0, p.ItemDouble());
        Assert.Equal(0.0, lp.ItemDouble());
        (p + lp).Backward();
        Assert.Equal(0, x.Grad!.Rank);
        Assert.Equal(0.0, x.Grad.ItemDouble());
    }

    [Fact]
    public void LogSumExpOverAnEmptyDimensionIsMinusInfinity()
    {
        var x = Tensor.Zeros([2, 0], DType.Float64).RequiresGrad_();
        var y = x.LogSumExp(1);
        Assert.Equal(new[] { double.NegativeInfinity, double.NegativeInfinity }, y.ToDoubleArray());
        y.Backward(Tensor.Ones([2], DType.Float64));
        Assert.Equal(new[] { 2, 0 }, x.Grad!.Shape.ToArray());
        Assert.Equal(new[] { 0, 1 }, Tensor.Zeros([0, 3]).LogSumExp(1, keepDim: true).Shape.ToArray());
    }

    [Fact]
    public void Reductions()
    {
        var m = Tensor.FromArray(new float[,] { { 1, 5, 3 }, { 4, 2, 6 } });
        Assert.Equal(21f, m.Sum().Item());
        Close([5, 7, 9], m.Sum(0));
        Close([9, 12], m.Sum(1));
        Assert.Equal(new[] { 2, 1 }, m.Sum(1, keepDim: true).Shape.ToArray());
        Close([3, 4], m.Mean(1));
        Assert.Equal(6f, m.Max().Item());
        Assert.Equal(1f, m.Min().Item());
        var (v, i) = m.Max(1);
        Close([5, 6], v);
        Assert.Equal(new long[] { 1, 2 }, i.ToLongArray());
        Assert.Equal(new long[] { 0, 1, 0 }, m.Argmin(0).ToLongArray());
        Assert.Equal(5, m.Argmax().ToLongArray()[0]);
        Close([4, 4], m.Var(1)); // unbiased: ((1-3)²+(5-3)²+0)/2 = 4; ((4-4)²+(2-4)²+(6-4)²)/2 = 4
        Close([8.0 / 3, 8.0 / 3], m.Var(1, correction: 0));
        Close([Math.Log(Math.Exp(1) + Math.Exp(5) + Math.Exp(3)), Math.Log(Math.Exp(4) + Math.Exp(2) + Math.Exp(6))], m.LogSumExp(1));
        Assert.True(float.IsNegativeInfinity(Tensor.Full([3], double.NegativeInfinity).LogSumExp(0).Item()));
        Close([1e4 + Math.Log(2)], Tensor.FromArray([1e4f, 1e4f]).LogSumExp(0).Reshape(1), 1e-6);
    }

    [Fact]
    public void JoiningAndIndexing()
    {
        var a = Tensor.FromArray(new float[,] { { 1, 2 }, { 3, 4 } });
        var b = Tensor.FromArray(new float[,] { { 5, 6 } });
        Close([1, 2, 3, 4, 5, 6], Tensor.Concat([a, b], 0));
        Close([1, 2, 1, 3, 4, 3], Tensor.Concat([a, a.Narrow(1, 0, 1)], 1));
        Assert.Equal(new[] { 2, 2, 2 }, Tensor.Stack([a, a], 1).Shape.ToArray());
        var parts = Tensor.Arange(7).Split(3);
        Assert.Equal(new[] { 3, 3, 1 }, parts.Select(p => p.NumElements).ToArray());
        Close([3, 4, 5], parts[1]);
        Close([3, 4, 1, 2, 3, 4], a.IndexSelect(0, Tensor.FromArray(new long[] { 1, 0, 1 })));
        Close([2, 1, 3, 3], a.Gather(1, Tensor.FromArray(new long[] { 1, 0, 0, 0 }, 2, 2)));
        Close([11, 2, 3, 24], Tensor.Zeros(2, 2).Add(a).ScatterAdd(1, Tensor.FromArray(new long[] { 0, 0, 1, 1 }, 2, 2), Tensor.FromArray([4f, 6f, 9f, 11f], 2, 2)));
        Close([0, 1, 0, 1, 0, 0], Tensor.OneHot(Tensor.FromArray(new long[] { 1, 0 }), 3));
        var ex = Assert.Throws<IndexOutOfRangeException>(() => a.IndexSelect(0, Tensor.FromArray(new long[] { 0, 2 })));
        Assert.Contains("index 2 (at position 1) is out of range for dimension 0 of size 2", ex.Message);
        Assert.Contains("int64", Assert.Throws<ArgumentException>(() => a.Gather(1, Tensor.Zeros(2, 2))).Message);
        Assert.Contains("out of range", Assert.Throws<IndexOutOfRangeException>(() => a.Gather(1, Tensor.FromArray(new long[] { 5, 0, 0, 0 }, 2, 2))).Message);
        Assert.Contains("tensor 1 has shape [1, 3]", Assert.Throws<ShapeException>(() => Tensor.Concat([a, Tensor.Zeros(1, 3)], 0)).Message);
    }
}
