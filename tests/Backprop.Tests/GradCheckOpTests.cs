using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>Every differentiable op against central finite differences in float64, on random shapes with broadcasting.</summary>
public class GradCheckOpTests
{
    public static IEnumerable<object[]> Seeds => [[1], [2], [3]];

    private static int[] RandShape(Generator g, int minRank = 1, int maxRank = 3)
    {
        int rank = minRank + g.NextInt(maxRank - minRank + 1);
        return Enumerable.Range(0, rank).Select(_ => 1 + g.NextInt(4)).ToArray();
    }

    /// <summary>A shape that broadcasts against <paramref name="s"/>: some dims set to 1, maybe fewer leading dims.</summary>
    private static int[] BroadcastPartner(Generator g, int[] s)
    {
        var p = s.Select(d => g.NextInt(3) == 0 ? 1 : d).ToArray();
        int drop = g.NextInt(s.Length + 1);
        return p[drop..];
    }

    [Theory, MemberData(nameof(Seeds))]
    public void ArithmeticWithBroadcasting(int seed)
    {
        var g = new Generator(seed);
        var s = RandShape(g);
        var p = BroadcastPartner(g, s);
        Check(x => x[0] + x[1], R(g, s), R(g, p));
        Check(x => x[0] - x[1], R(g, p), R(g, s));
        Check(x => x[0] * x[1], R(g, s), R(g, p));
        Check(x => x[0] / x[1], R(g, s), Pos(g, p));
        Check(x => x[1] / x[0], Pos(g, s), R(g, p));
        Check(x => -x[0], R(g, s));
        Check(x => x[0] * 3 + 2 - x[0] / 4, R(g, s));
        Check(x => 1.5 / x[0], Pos(g, s));
    }

    [Theory, MemberData(nameof(Seeds))]
    public void PowerExpLogSqrtAbs(int seed)
    {
        var g = new Generator(seed);
        var s = RandShape(g);
        Check(x => x[0].Pow(2), R(g, s));
        Check(x => x[0].Pow(3), R(g, s));
        Check(x => x[0].Pow(-1.5), Pos(g, s));
        Check(x => x[0].Pow(0.5), Pos(g, s));
        Check(x => x[0].Pow(x[1]), Pos(g, s), R(g, BroadcastPartner(g, s)));
        Check(x => x[0].Exp(), R(g, s));
        Check(x => x[0].Log(), Pos(g, s));
        Check(x => x[0].Sqrt(), Pos(g, s));
        Check(x => x[0].Abs(), R(g, s));
        Check(x => x[0].Erf(), R(g, s));
    }

    [Theory, MemberData(nameof(Seeds))]
    public void TrigonometryAndRounding(int seed)
    {
        var g = new Generator(seed);
        var s = RandShape(g);
        Check(x => x[0].Sin(), R(g, s));
        Check(x => x[0].Cos(), R(g, s));
        Check(x => x[0].Sin() * x[0].Cos(), R(g, s));
        Check(x => x[0].Floor() + x[0], R(g, s));
        Check(x => x[0].Ceil() * x[0], R(g, s));
        Check(x => x[0].Round() - x[0], R(g, s));
    }

    [Theory, MemberData(nameof(Seeds))]
    public void ClampMaximumMinimumWhere(int seed)
    {
        var g = new Generator(seed);
        var s = RandShape(g);
        Check(x => x[0].Clamp(-0.5, 0.5), R(g, s));
        Check(x => x[0].Clamp(min: 0.1), R(g, s));
        Check(x => x[0].Clamp(max: -0.2), R(g, s));
        var p = BroadcastPartner(g, s);
        Check(x => Tensor.Maximum(x[0], x[1]), R(g, s), R(g, p));
        Check(x => Tensor.Minimum(x[0], x[1]), R(g, p), R(g, s));
        var cond = Tensor.Rand(s, g).Gt(0.5);
        Check(x => Tensor.Where(cond, x[0], x[1]), R(g, s), R(g, p));
    }

    [Theory, MemberData(nameof(Seeds))]
    public void Activations(int seed)
    {
        var g = new Generator(seed);
        var s = RandShape(g);
        Check(x => x[0].Tanh(), R(g, s));
        Check(x => x[0].Sigmoid(), R(g, s));
        Check(x => x[0].Relu(), R(g, s));
        Check(x => x[0].LeakyRelu(0.1), R(g, s));
        Check(x => x[0].Gelu(), R(g, s));
        Check(x => x[0].Gelu(approximateTanh: true), R(g, s));
        Check(x => x[0].Softplus(), R(g, s));
        Check(x => x[0].Softplus(beta: 2, threshold: 1), R(g, s));
    }

    [Theory, MemberData(nameof(Seeds))]
    public void MatMulAllForms(int seed)
    {
        var g = new Generator(seed);
        int m = 1 + g.NextInt(5), k = 1 + g.NextInt(5), n = 1 + g.NextInt(5), b = 1 + g.NextInt(3);
        Check(x => x[0].MatMul(x[1]), R(g, m, k), R(g, k, n));
        Check(x => x[0].MatMul(x[1]), R(g, k), R(g, k));
        Check(x => x[0].MatMul(x[1]), R(g, k), R(g, k, n));
        Check(x => x[0].MatMul(x[1]), R(g, m, k), R(g, k));
        Check(x => x[0].MatMul(x[1]), R(g, b, m, k), R(g, b, k, n));
        Check(x => x[0].MatMul(x[1]), R(g, b, m, k), R(g, k, n));       // broadcast right operand
        Check(x => x[0].MatMul(x[1]), R(g, 2, 1, m, k), R(g, b, k, n)); // broadcast batch dims
        Check(x => x[0].T.MatMul(x[1].T), R(g, k, m), R(g, n, k));       // transposed views
    }

    [Theory, MemberData(nameof(Seeds))]
    public void Reductions(int seed)
    {
        var g = new Generator(seed);
        var s = RandShape(g, 2, 4);
        int d = g.NextInt(s.Length);
        Check(x => x[0].Sum(), R(g, s));
        Check(x => x[0].Sum(d), R(g, s));
        Check(x => x[0].Sum([0, -1], keepDim: true), R(g, s));
        Check(x => x[0].Mean(), R(g, s));
        Check(x => x[0].Mean(d, keepDim: true), R(g, s));
        Check(x => x[0].Mean([0, -1]), R(g, s));
        Check(x => x[0].Max(), R(g, s));
        Check(x => x[0].Min(), R(g, s));
        Check(x => x[0].Max(d).Values, R(g, s));
        Check(x => x[0].Min(d, keepDim: true).Values, R(g, s));
        var big = s.Select(v => v + 1).ToArray();
        Check(x => x[0].Var(), R(g, big));
        Check(x => x[0].Var(d, correction: 0, keepDim: true), R(g, big));
        Check(x => x[0].LogSumExp(d), R(g, s));
        Check(x => x[0].LogSumExp([0, -1], keepDim: true), R(g, s));
        Check(x => x[0].SumTo(1, s[^1]), R(g, s));
    }

    [Theory, MemberData(nameof(Seeds))]
    public void SoftmaxAndLogSoftmax(int seed)
    {
        var g = new Generator(seed);
        var s = RandShape(g, 1, 3);
        int d = g.NextInt(s.Length);
        Check(x => x[0].Softmax(d), R(g, s));
        Check(x => x[0].Softmax(-1), R(g, s));
        Check(x => x[0].LogSoftmax(d), R(g, s));
        Check(x => x[0].LogSoftmax(-1), R(g, s));
    }

    [Theory, MemberData(nameof(Seeds))]
    public void Views(int seed)
    {
        var g = new Generator(seed);
        Check(x => x[0].Reshape(6, -1), R(g, 3, 4));
        Check(x => x[0].View(2, 6), R(g, 3, 4));
        Check(x => x[0].Transpose(0, 1) * Tensor.Arange(3, dtype: DType.Float64), R(g, 3, 4));
        Check(x => x[0].Permute(2, 0, 1), R(g, 2, 3, 4));
        Check(x => x[0].Narrow(1, 1, 2), R(g, 3, 4));
        Check(x => x[0].Slice(1, 0, 4, 2), R(g, 3, 4));
        Check(x => x[0].Select(0, -1), R(g, 3, 4));
        Check(x => x[0].Unsqueeze(1).Squeeze(), R(g, 3, 4));
        Check(x => x[0].Expand(2, 3, 4), R(g, 3, 1));
        Check(x => x[0].T.Contiguous(), R(g, 3, 4));
        Check(x => x[0].Flatten(), R(g, 2, 3, 4));
        Check(x => x[0].T.Reshape(-1), R(g, 3, 4)); // reshape of a non-contiguous view copies
        Check(x => x[0].Clone() * x[0], R(g, 3));
    }

    [Theory, MemberData(nameof(Seeds))]
    public void Joining(int seed)
    {
        var g = new Generator(seed);
        Check(x => Tensor.Concat([x[0], x[1], x[0]], 1), R(g, 2, 3), R(g, 2, 1));
        Check(x => Tensor.Stack([x[0], x[1]], -1), R(g, 2, 3), R(g, 2, 3));
        Check(x => x[0].Split(2, 1)[1] * 2 + x[0].Split([1, 3], 1)[0].Sum(), R(g, 3, 4));
        Check(x => x[0].Chunk(3, 0)[2], R(g, 5, 2));
    }

    [Theory, MemberData(nameof(Seeds))]
    public void Indexing(int seed)
    {
        var g = new Generator(seed);
        var idx = Tensor.FromArray(new long[] { 2, 0, 2, 1 });
        Check(x => x[0].IndexSelect(0, idx), R(g, 3, 4));
        Check(x => x[0].IndexSelect(1, idx), R(g, 2, 3));
        var gi = Tensor.RandInt(0, 4, [3, 5], g);
        Check(x => x[0].Gather(1, gi), R(g, 3, 4));
        var si = Tensor.RandInt(0, 3, [2, 4], g);
        Check(x => x[0].ScatterAdd(0, si, x[1]), R(g, 3, 4), R(g, 2, 4));
        var si2 = Tensor.RandInt(0, 4, [3, 2], g);
        Check(x => x[0].ScatterAdd(1, si2, x[1]), R(g, 3, 4), R(g, 3, 3)); // src larger than index
    }

    [Fact]
    public void NormGradientAtAZeroVectorIsZeroAsInPyTorch()
    {
        // torch.linalg.vector_norm(x, ord, dim=1).sum().backward() with x's first row zero:
        // the zero row's gradient is 0 (not NaN); the other row's is x·|x|^(p−2)/‖x‖^(p−1).
        foreach (double p in new[] { 2.0, 3.0 })
        {
            var x = Tensor.FromArray(new double[,] { { 0, 0, 0 }, { 3, -4, 0 } }).RequiresGrad_();
            x.Norm(p, [1]).Sum().Backward();
            var gr = x.Grad!.ToDoubleArray();
            double n = Math.Pow(Math.Pow(3, p) + Math.Pow(4, p), 1 / p);
            Assert.Equal([0, 0, 0], gr[..3]);
            Assert.Equal(3 * Math.Pow(3, p - 2) / Math.Pow(n, p - 1), gr[3], 12);
            Assert.Equal(-4 * Math.Pow(4, p - 2) / Math.Pow(n, p - 1), gr[4], 12);
            Assert.Equal(0, gr[5]);
        }
        var z = Tensor.Zeros([4], DType.Float64).RequiresGrad_();
        z.Norm().Backward();
        Assert.All(z.Grad!.ToDoubleArray(), v => Assert.Equal(0, v));
    }

    [Theory, MemberData(nameof(Seeds))]
    public void Composites(int seed)
    {
        var g = new Generator(seed);
        var s = RandShape(g, 2, 3).Select(v => v + 1).ToArray();
        int d = g.NextInt(s.Length);
        Check(x => x[0].Std(), R(g, s));
        Check(x => x[0].Std(d, correction: 0, keepDim: true), R(g, s));
        Check(x => x[0].Norm(), R(g, s));
        Check(x => x[0].Norm(1, [d]), R(g, s));
        Check(x => x[0].Norm(3, [0, -1], keepDim: true), R(g, s));
        Check(x => x[0].Norm(double.PositiveInfinity, [d]), R(g, s));
        var mask = Tensor.Rand(s, g).Gt(0.5);
        Check(x => x[0].MaskedFill(mask, -2), R(g, s));
        Check(x => x[0].Tril(), R(g, s));
        Check(x => x[0].Triu(1), R(g, s));
        Check(x => x[0].Tril(-1) * x[0], R(g, s));
        Check(x => x[0].Repeat(2, 1, 3), R(g, 2, 3));
        Check(x => x[0].Repeat(2, 2), R(g, 3));
        Check(x => x[0].Flip(d), R(g, s));
        Check(x => x[0].Flip(0, -1) * x[0], R(g, s));
        Check(x => x[0].Roll(1, d), R(g, s));
        Check(x => x[0].Roll([-1, 2], [0, -1]), R(g, s));
        Check(x => x[0].Roll([3]), R(g, s));
        Check(x => x[0].Cumsum(d), R(g, s));
        Check(x => x[0].Cumsum(-1) * x[0], R(g, s));
    }

    [Theory, MemberData(nameof(Seeds))]
    public void Einsum(int seed)
    {
        var g = new Generator(seed);
        int b = 1 + g.NextInt(3), i = 1 + g.NextInt(4), j = 1 + g.NextInt(4), k = 1 + g.NextInt(4);
        Check(x => Tensor.Einsum("bij,bjk->bik", x[0], x[1]), R(g, b, i, j), R(g, b, j, k));
        Check(x => Tensor.Einsum("bhqd,bhkd->bhqk", x[0], x[1]), R(g, b, 2, i, j), R(g, b, 2, k, j));
        Check(x => Tensor.Einsum("ij,jk->ik", x[0], x[1]), R(g, i, j), R(g, j, k));
        Check(x => Tensor.Einsum("i,i->", x[0], x[1]), R(g, i), R(g, i));
        Check(x => Tensor.Einsum("bi,ij,bj->b", x[0], x[1], x[2]), R(g, b, i), R(g, i, j), R(g, b, j));
        Check(x => Tensor.Einsum("ij->ji", x[0]), R(g, i, j));
        Check(x => Tensor.Einsum("ij,kj", x[0], x[1]), R(g, i, j), R(g, k, j));
        Check(x => Tensor.Einsum("...ij,...jk->...ik", x[0], x[1]), R(g, b, 2, i, j), R(g, j, k));
        Check(x => Tensor.Einsum("ii->i", x[0]), R(g, i, i));
        Check(x => Tensor.Einsum("bii,bi->b", x[0], x[1]), R(g, b, i, i), R(g, b, i));
        Check(x => Tensor.Einsum("bij,bjk->bik", x[0], x[1]), R(g, 1, i, j), R(g, b, j, k));
    }

    [Theory, MemberData(nameof(Seeds))]
    public void SortAndTopKValues(int seed)
    {
        var g = new Generator(seed);
        var s = RandShape(g, 1, 3).Select(v => v + 1).ToArray();
        int d = g.NextInt(s.Length);
        Check(x => x[0].Sort(d).Values, R(g, s));
        Check(x => x[0].Sort(-1, descending: true).Values * x[0], R(g, s));
        Check(x => x[0].TopK(1, d).Values, R(g, s));
        Check(x => x[0].TopK(s[^1] - 1, largest: false).Values, R(g, s));
    }

    [Theory, MemberData(nameof(Seeds))]
    public void CSharpIndexing(int seed)
    {
        var g = new Generator(seed);
        Check(x => x[0][.., 0], R(g, 3, 4));
        Check(x => x[0][1..^1], R(g, 4, 3));
        Check(x => x[0][^1, 1..], R(g, 3, 4));
        var mask = Tensor.Rand([3, 4], g).Gt(0.3);
        Check(x => x[0][mask] * 2, R(g, 3, 4));
        Check(x => x[0][Tensor.FromArray([1f, 0f, 1f])], R(g, 3, 2));
    }

    [Fact]
    public void DTypeConversionIsDifferentiable()
    {
        // float32 rounding inside the function needs a larger finite-difference step
        var report = Autograd.GradCheck.Run(x => x[0].To(DType.Float32).To(DType.Float64) * 2, [R(new Generator(9), 3)], eps: 1e-2, atol: 1e-4);
        Assert.True(report.Passed, report.ToString());
    }

    [Fact]
    public void GradCheckCatchesAWrongGradient()
    {
        // a deliberately wrong backward (Detach drops a term) must be reported
        var report = Autograd.GradCheck.Run(x => x[0] * x[0].Detach(), [R(new Generator(1), 3)]);
        Assert.False(report.Passed);
        Assert.Contains("FAILED", report.ToString());
        Assert.Equal(6, report.ForwardPasses);
    }
}
