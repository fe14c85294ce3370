using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>Forward values of the PyTorch-style tensor API: trigonometry, rounding, in-place forms, composites, sorting, int64 arithmetic, C# indexing.</summary>
public class TensorApiTests
{
    private static readonly Tensor X = Tensor.FromArray([-2.5f, -0.5f, 0f, 0.5f, 1.5f, 2.7f]);

    [Fact]
    public void TrigonometryAndRounding()
    {
        Close(X.ToArray().Select(v => Math.Sin(v)).ToArray(), X.Sin(), 1e-6);
        Close(X.ToArray().Select(v => Math.Cos(v)).ToArray(), X.Cos(), 1e-6);
        Close([-3, -1, 0, 0, 1, 2], X.Floor());
        Close([-2, -0, 0, 1, 2, 3], X.Ceil());
        Close([-2, -0, 0, 0, 2, 3], X.Round()); // halves to even, as torch.round
    }

    [Fact]
    public void RoundingHasZeroGradient()
    {
        var x = Tensor.FromArray([0.3, 1.7, -2.2]).RequiresGrad_();
        (x.Floor() + x.Ceil() + x.Round()).Sum().Backward();
        Close([0, 0, 0], x.Grad!);
    }

    [Fact]
    public void InPlaceFormsWithScalarsAndTensors()
    {
        var t = Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2);
        int v0 = t.Version;
        t.Add_(1);
        Close([2, 3, 4, 5], t);
        Assert.True(t.Version > v0);
        t.Sub_(Tensor.FromArray([1f, 2f]));
        Close([1, 1, 3, 3], t);
        t.Sub_(Tensor.FromArray([1f, 1f]), alpha: 2);
        Close([-1, -1, 1, 1], t);
        t.Sub_(0.5);
        Close([-1.5, -1.5, 0.5, 0.5], t);
        t.Mul_(Tensor.FromArray([2f, 4f], 2, 1));
        Close([-3, -3, 2, 2], t);
        t.Div_(Tensor.FromArray([1f, 2f]));
        Close([-3, -1.5, 2, 1], t);
        t.Div_(2);
        Close([-1.5, -0.75, 1, 0.5], t);
        t.Clamp_(-1, 0.75);
        Close([-1, -0.75, 0.75, 0.5], t);
        t.Clamp_(min: 0);
        Close([0, 0, 0.75, 0.5], t);
        t.Copy_(Tensor.FromArray(new long[] { 7, 8 }));
        Close([7, 8, 7, 8], t);
        Assert.Equal(DType.Float32, t.DType);
    }

    [Fact]
    public void InPlaceFormsOnStridedViewsWriteThrough()
    {
        var t = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        t.T.Add_(10);
        t.Narrow(1, 1, 2).Mul_(Tensor.FromArray([2f, 3f]));
        t.Select(1, 0).Clamp_(max: 12);
        Close([11, 24, 39, 12, 30, 48], t);
    }

    [Fact]
    public void InPlaceFormsRefuseRecordedTensorsAndBadShapes()
    {
        var w = Tensor.FromArray([1.0, 2.0]).RequiresGrad_();
        var e = Assert.Throws<InvalidOperationException>(() => w.Add_(1));
        Assert.Contains("Add_", e.Message);
        Assert.Throws<InvalidOperationException>(() => w.Div_(Tensor.FromArray([1.0, 2.0])));
        Assert.Throws<InvalidOperationException>(() => (w * 2).Clamp_(0, 1));
        Assert.Throws<InvalidOperationException>(() => w.Copy_(Tensor.FromArray([1f, 2f])));
        using (Tensor.NoGrad()) w.Mul_(Tensor.FromArray([3.0, 3.0])).Sub_(1);
        Close([2, 5], w);
        var s = Assert.Throws<ShapeException>(() => Tensor.Zeros(2).Mul_(Tensor.Ones(3, 2)));
        Assert.Contains("Mul_", s.Message);
        Assert.Throws<ArgumentException>(() => Tensor.Zeros(2).Add_(Tensor.Zeros([2], DType.Float64)));
        Assert.Throws<NotSupportedException>(() => Tensor.FromArray(new long[] { 1 }).Div_(2));
    }

    [Fact]
    public void CreatorsTakeParamsShapes()
    {
        Assert.Equal([3, 4], Tensor.Randn(3, 4).Shape.ToArray());
        Assert.Equal([2, 5], Tensor.Rand(2, 5).Shape.ToArray());
        var r = Tensor.RandInt(0, 3, 4, 2);
        Assert.Equal([4, 2], r.Shape.ToArray());
        Assert.Equal(DType.Int64, r.DType);
        Assert.All(r.ToLongArray(), v => Assert.InRange(v, 0, 2));
        Close([1, 0, 0, 0, 1, 0], Tensor.Eye(2, 3));
        var like = Tensor.Zeros([2, 2], DType.Float64);
        Assert.Equal(DType.Float64, Tensor.Linspace(0, 1, 3, like).DType);
        Close([7, 7, 7, 7], Tensor.FullLike(like, 7));
        Assert.Equal(DType.Float64, Tensor.FullLike(like, 7).DType);
        Assert.Equal([2, 2], Tensor.RandIntLike(like, 0, 5).Shape.ToArray());
    }

    [Fact]
    public void Composites()
    {
        var m = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        Close([1, 1], m.Std(1), 1e-6);
        Close([Math.Sqrt(91)], m.Norm(), 1e-5);
        Close([6, 15], m.Norm(1, [1]));
        Close([3, 6], m.Norm(double.PositiveInfinity, [1]));
        Close([0, 2, 3, 0, 0, 6], m.MaskedFill(Tensor.FromArray([1f, 0f, 0f, 1f, 1f, 0f], 2, 3), 0));
        Close([9, 9, 3, 9, 9, 6], m.MaskedFill(Tensor.FromArray([1f, 1f, 0f]), 9));
        Close([1, 0, 0, 4, 5, 0], m.Tril());
        Close([0, 2, 3, 0, 0, 6], m.Triu(1));
        Close([1, 2, 1, 2, 3, 4, 3, 4], Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2).Repeat(1, 2));
        Assert.Equal([2, 2, 6], m.Repeat(2, 1, 2).Shape.ToArray());
        Close([6, 5, 4, 3, 2, 1], m.Flip(0, 1));
        Close([3, 1, 2, 6, 4, 5], m.Roll(1, 1));
        Close([6, 1, 2, 3, 4, 5], m.Roll([1]));
        Close([1, 3, 6, 4, 9, 15], m.Cumsum(1));
        Close([1, 2, 3, 5, 7, 9], m.Cumsum(0));
        Close([14, 32, 32, 77], Tensor.Einsum("ij,kj->ik", m, m));
        Close([6], Tensor.Einsum("ii", m.Narrow(1, 0, 2)));                  // trace of [[1, 2], [4, 5]]
        Close([1, 5], Tensor.Einsum("ii->i", m.Narrow(1, 0, 2)));
        Close([6, 15], Tensor.Einsum("...i->...", m));
        Assert.Contains("more than one \"...\"", Assert.Throws<ArgumentException>(() => Tensor.Einsum("......i", m)).Message);
        Assert.Contains("'.' that is not part of", Assert.Throws<ArgumentException>(() => Tensor.Einsum("..i", m)).Message);
        Assert.Contains("repeated in operand 0 (a diagonal) over dimensions of sizes 2 and 3", Assert.Throws<ShapeException>(() => Tensor.Einsum("ii", m)).Message);
        Assert.Contains("do not broadcast", Assert.Throws<ShapeException>(() => Tensor.Einsum("...i,...i->...", m, Tensor.Ones(3, 3))).Message);
        Close([91], Tensor.Einsum("ij,ij->", m, m));
        var e = Assert.Throws<ShapeException>(() => Tensor.Einsum("ij,jk->ik", m, m));
        Assert.Contains("subscript 'j'", e.Message);
        Assert.Throws<ArgumentException>(() => Tensor.Einsum("ij,jk->ik", m));
        Assert.Throws<ArgumentException>(() => m.Repeat(2));
        Assert.Throws<ShapeException>(() => m.MaskedFill(Tensor.Ones(3, 2, 3), 0));
        Assert.Throws<ShapeException>(() => Tensor.Ones(3).Tril());
    }

    [Fact]
    public void SortArgsortTopK()
    {
        var m = Tensor.FromArray([3f, 1f, 2f, 1f, float.NaN, 0f], 2, 3);
        var (v, i) = m.Sort();
        Close([1, 2, 3, 0, 1], v.Flatten().Narrow(0, 0, 5));
        Assert.True(float.IsNaN(v[1, 2]));
        Assert.Equal([1L, 2, 0, 2, 0, 1], i.ToLongArray());
        Assert.Equal(DType.Int64, i.DType);
        var (vd, id) = m.Sort(0, descending: true);
        Assert.True(float.IsNaN(vd[0, 1]));
        Assert.Equal([3f, 2f, 1f, 1f, 0f], vd.ToArray().Where(f => !float.IsNaN(f)));
        Assert.Equal([0L, 1, 0, 1, 0, 1], id.ToLongArray());
        Assert.Equal([0L, 2, 3, 1], Tensor.FromArray([4f, 1f, 3f, 2f]).Argsort(descending: true).ToLongArray());
        Assert.Equal([1L, 3, 0, 2], Tensor.FromArray([4f, 1f, 5f, 2f]).Argsort().ToLongArray());
        Assert.Equal([1L, 0, 2], Tensor.FromArray(new long[] { 5, -2, 9 }).Argsort().ToLongArray());
        var (tv, ti) = Tensor.FromArray([4f, 1f, 5f, 2f, 5f]).TopK(3);
        Close([5, 5, 4], tv);
        Assert.Equal([2L, 4, 0], ti.ToLongArray());
        var (sv, si) = Tensor.FromArray([4f, 1f, 5f, 2f], 2, 2).TopK(1, 0, largest: false);
        Close([4, 1], sv);
        Assert.Equal([0L, 0], si.ToLongArray());
        Assert.Throws<ArgumentException>(() => Tensor.Ones(3).TopK(4));
        // the gradient of sorted values goes back to where they came from
        var x = Tensor.FromArray([3.0, 1.0, 2.0]).RequiresGrad_();
        (x.Sort().Values * Tensor.FromArray([1.0, 10.0, 100.0])).Sum().Backward();
        Close([100, 1, 10], x.Grad!);
    }

    [Fact]
    public void MultinomialAndRandPerm()
    {
        var g = new Generator(5);
        var p = Tensor.FromArray([0.1f, 0f, 0.6f, 0.3f]);
        var draws = Tensor.Multinomial(p, 4000, replacement: true, generator: g).ToLongArray();
        Assert.DoesNotContain(1L, draws);
        Assert.InRange(draws.Count(v => v == 2) / 4000.0, 0.55, 0.65);
        Assert.InRange(draws.Count(v => v == 0) / 4000.0, 0.07, 0.13);
        var rows = Tensor.Multinomial(Tensor.FromArray([1f, 1f, 1f, 0f, 0f, 1f, 1f, 2f], 2, 4), 3, generator: g);
        Assert.Equal([2, 3], rows.Shape.ToArray());
        Assert.Equal(DType.Int64, rows.DType);
        var r = rows.ToLongArray();
        Assert.Equal([0L, 1, 2], r[..3].Order().ToArray()); // without replacement: each category once
        Assert.Equal(3, r[3..].Distinct().Count());
        Assert.DoesNotContain(0L, r[3..]);
        Assert.Throws<ArgumentException>(() => Tensor.Multinomial(p, 4, generator: g)); // only 3 nonzero weights
        Assert.Throws<ArgumentException>(() => Tensor.Multinomial(Tensor.FromArray([1f, -1f]), 1));
        var perm = Tensor.RandPerm(10, new Generator(3));
        Assert.Equal(Enumerable.Range(0, 10).Select(v => (long)v), perm.ToLongArray().Order());
        Assert.Equal(perm.ToLongArray(), Tensor.RandPerm(10, new Generator(3)).ToLongArray());
        Assert.NotEqual(perm.ToLongArray(), Tensor.RandPerm(10, new Generator(4)).ToLongArray());
    }

    [Fact]
    public void Int64ArithmeticAndSums()
    {
        var a = Tensor.FromArray(new long[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        var b = Tensor.FromArray(new long[] { 10, 20, 30 });
        Assert.Equal([11L, 22, 33, 14, 25, 36], (a + b).ToLongArray());
        Assert.Equal([-9L, -18, -27, -6, -15, -24], (a - b).ToLongArray());
        Assert.Equal([10L, 40, 90, 40, 100, 180], (a * b).ToLongArray());
        Assert.Equal(DType.Int64, (a * b).DType);
        Assert.Equal([3L, 4, 5, 6, 7, 8], (a + 2).ToLongArray());
        Assert.Equal([9L, 8, 7, 6, 5, 4], (10 - a).ToLongArray());
        Assert.Equal([3L, 6, 9, 12, 15, 18], (3 * a).ToLongArray());
        Assert.Equal([-1L, -2, -3, -4, -5, -6], (-a).ToLongArray());
        Assert.Equal(DType.Int64, a.Sum().DType);
        Assert.Equal(21L, a.Sum().GetLong());
        Assert.Equal([5L, 7, 9], a.Sum(0).ToLongArray());
        Assert.Equal([6L, 15], a.Sum(1).ToLongArray());
        Assert.Equal([2, 1], a.Sum(1, keepDim: true).Shape.ToArray());
        long big = 1L << 60;
        Assert.Equal(big + 1, (Tensor.FromArray(new long[] { big }) + Tensor.FromArray(new long[] { 1 })).GetLong(0)); // exact beyond 2^53
        // comparisons of int64 give bool; Mean of a bool result is the fraction of true elements
        Assert.Equal(0.5f, a.Gt(Tensor.FromArray(new long[] { 3 })).Mean().Item());
        var e = Assert.Throws<ArgumentException>(() => a + Tensor.Ones(3));
        Assert.Contains("dtypes differ", e.Message);
        Assert.Throws<ArgumentException>(() => a + 0.5);
        Assert.Contains("To(DType.Float32)", Assert.Throws<NotSupportedException>(() => a / b).Message);
    }

    [Fact]
    public void CSharpIndicesAndRanges()
    {
        var t = Tensor.Arange(12).Reshape(3, 4);
        Close([0, 4, 8], t[.., 0]);
        Close([4, 5, 6, 7], t[1..^1].Flatten());
        Assert.Equal([1, 4], t[1..^1].Shape.ToArray());
        Close([8, 9, 10, 11], t[^1, ..]);
        Close([3, 7, 11], t[TensorIndex.Ellipsis, ^1]);
        Close([5, 6], t[1, 1..3]);
        Close([1, 2, 5, 6, 9, 10], t[.., 1..3]);
        Assert.Equal([3, 0], t[.., 5..].Shape.ToArray()); // clipped like Python slices
        Close([6], t[1, 2, TensorIndex.Ellipsis].Reshape(1));
        Assert.Equal(6f, t[1, 2]); // all ints: the element as a number
        Assert.Throws<IndexOutOfRangeException>(() => t[3, ..]);
        Assert.Throws<ArgumentException>(() => t[0, 0, ..]);
        t[.., 0] = Tensor.Zeros(3);
        t[0, 1..] = Tensor.Scalar(-1);
        Close([0, -1, -1, -1, 0, 5, 6, 7, 0, 9, 10, 11], t);
        // differentiable
        var x = Tensor.FromArray([1.0, 2.0, 3.0, 4.0], 2, 2).RequiresGrad_();
        (x[.., 1] * 3).Sum().Backward();
        Close([0, 3, 0, 3], x.Grad!);
    }

    [Fact]
    public void BooleanMaskIndexing()
    {
        var t = Tensor.FromArray([1f, -2f, 3f, -4f, 5f, -6f], 2, 3);
        var sel = t[t.Gt(0)];
        Close([1, 3, 5], sel);
        Assert.Equal([3], sel.Shape.ToArray());
        Close([-4, 5, -6], t[Tensor.FromArray([0f, 1f])].Flatten());
        Assert.Equal([1, 3], t[Tensor.FromArray([0f, 1f])].Shape.ToArray());
        Assert.Equal([0], t[Tensor.Zeros(2, 3)].Shape.ToArray());
        Assert.Throws<ShapeException>(() => t[Tensor.Ones(3)]);
        var x = Tensor.FromArray([1.0, -2.0, 3.0]).RequiresGrad_();
        x[x.Gt(0)].Sum().Backward();
        Close([1, 0, 1], x.Grad!);
        // the fraction of positive elements: Mean of a bool comparison
        Assert.Equal(0.5f, t.Gt(0).Mean().Item());
    }
}

public class ComparisonOperatorTests
{
    [Fact]
    public void ComparisonOperatorsGiveZerosAndOnesThatMeanToAFraction()
    {
        var a = Tensor.FromArray([-1f, 0f, 2f, 3f]);
        var b = Tensor.FromArray([0f, 0f, 1f, 5f]);
        Assert.Equal([0f, 0f, 1f, 0f], (a > b).ToArray());
        Assert.Equal([1f, 0f, 0f, 1f], (a < b).ToArray());
        Assert.Equal([0f, 1f, 1f, 0f], (a >= b).ToArray());
        Assert.Equal([1f, 1f, 0f, 1f], (a <= b).ToArray());
        Assert.Equal([0f, 0f, 1f, 1f], (a > 0).ToArray());
        Assert.Equal([1f, 1f, 0f, 0f], (a <= 0).ToArray());
        Assert.Equal([1f, 1f, 0f, 0f], (1 > a).ToArray());
        Assert.Equal([0f, 0f, 1f, 1f], (1 <= a).ToArray());
        Assert.Equal(0.5f, (a > 0).Mean().Item());
        Assert.Equal([-1f, 0f, 0f, 0f], Tensor.Where(a < 0, a, a.Const(0)).ToArray());
        Assert.Equal([2f, 3f], a[a > 1].ToArray());
    }
}
