namespace Backprop.Tests;

public class TensorTests
{
    [Fact]
    public void CreationAndShape()
    {
        var z = Tensor.Zeros(2, 3);
        Assert.Equal(new[] { 2, 3 }, z.Shape.ToArray());
        Assert.Equal(6, z.NumElements);
        Assert.Equal(DType.Float32, z.DType);
        Assert.All(z.ToArray(), v => Assert.Equal(0f, v));
        Assert.All(Tensor.Ones([4], DType.Float64).ToDoubleArray(), v => Assert.Equal(1.0, v));
        Assert.Equal(new[] { 7f, 7f }, Tensor.Full([2], 7).ToArray());
        Assert.Equal(new[] { 0f, 1f, 2f, 3f }, Tensor.Arange(4).ToArray());
        Assert.Equal(new[] { 1f, 1.5f, 2f, 2.5f }, Tensor.Arange(1, 3, 0.5).ToArray());
        Assert.Equal(new[] { 0f, 0.5f, 1f }, Tensor.Linspace(0, 1, 3).ToArray());
        Assert.Equal(new[] { 1f, 0f, 0f, 1f }, Tensor.Eye(2).ToArray());
        var s = Tensor.Scalar(3.5);
        Assert.Equal(0, s.Rank);
        Assert.Equal(3.5f, s.Item());
    }

    [Fact]
    public void FromArrayAndElementAccess()
    {
        var t = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        Assert.Equal(6f, t[1, 2]);
        Assert.Equal(4f, t[-1, 0]);
        t[0, 1] = 20;
        Assert.Equal(20f, t[0, 1]);
        Assert.Equal(new float[,] { { 1, 20, 3 }, { 4, 5, 6 } }, t.ToArray2D());
        var ex = Assert.Throws<ShapeException>(() => Tensor.FromArray([1f, 2f, 3f], 2, 2));
        Assert.Contains("3 values do not fill shape [2, 2]", ex.Message);
        var ix = Assert.Throws<IndexOutOfRangeException>(() => t[2, 0]);
        Assert.Contains("index 2 is out of range for dimension 0 of size 2", ix.Message);
        Assert.Throws<ArgumentException>(() => t[0]);
        var l = Tensor.FromArray(new long[] { 3, 1 });
        Assert.Equal(DType.Int64, l.DType);
        Assert.Equal(3, l.GetLong(0));
    }

    [Fact]
    public void GeneratorIsSeededAndReproducible()
    {
        var a = Tensor.Randn([100], new Generator(42));
        var b = Tensor.Randn([100], new Generator(42));
        var c = Tensor.Randn([100], new Generator(43));
        Assert.Equal(a.ToArray(), b.ToArray());
        Assert.NotEqual(a.ToArray(), c.ToArray());
        var big = Tensor.Randn([20000], new Generator(1)).ToDoubleArray();
        Assert.InRange(big.Average(), -0.05, 0.05);
        Assert.InRange(Math.Sqrt(big.Select(v => v * v).Average()), 0.95, 1.05);
        var u = Tensor.Rand([20000], new Generator(2)).ToArray();
        Assert.All(u, v => Assert.InRange(v, 0f, 1f));
        Assert.InRange(u.Average(), 0.48, 0.52);
        var g = new Generator(5);
        var state = g.GetState();
        var first = g.NextUInt64();
        g.SetState(state);
        Assert.Equal(first, g.NextUInt64());
        var p = new Generator(3).Permutation(10);
        Assert.Equal(Enumerable.Range(0, 10), p.OrderBy(v => v));
    }

    [Fact]
    public void ViewsShareStorage()
    {
        var t = Tensor.Arange(12).Reshape(3, 4);
        var tr = t.T;
        Assert.Equal(new[] { 4, 3 }, tr.Shape.ToArray());
        Assert.False(tr.IsContiguous);
        Assert.Equal(t[1, 2], tr[2, 1]);
        var col = t.Select(1, 2);
        Assert.Equal(new[] { 2f, 6f, 10f }, col.ToArray());
        var nar = t.Narrow(0, 1, 2);
        Assert.Equal(new[] { 4f, 5f, 6f, 7f, 8f, 9f, 10f, 11f }, nar.ToArray());
        var sl = t.Slice(1, 0, 4, 2);
        Assert.Equal(new[] { 0f, 2f, 4f, 6f, 8f, 10f }, sl.ToArray());
        using (Tensor.NoGrad()) nar.Fill_(-1);
        Assert.Equal(-1f, t[2, 3]); // a view writes through
        var p = Tensor.Arange(24).Reshape(2, 3, 4).Permute(2, 0, 1);
        Assert.Equal(new[] { 4, 2, 3 }, p.Shape.ToArray());
        Assert.Equal(13f, p[1, 1, 0]);
        Assert.Equal(new[] { 1, 3, 1, 4 }, t.Unsqueeze(0).Unsqueeze(2).Shape.ToArray());
        Assert.Equal(new[] { 3, 4 }, t.Unsqueeze(0).Squeeze().Shape.ToArray());
        var e = Tensor.FromArray([1f, 2f, 3f], 3, 1).Expand(3, 4);
        Assert.Equal(new[] { 1f, 1f, 1f, 1f, 2f, 2f, 2f, 2f, 3f, 3f, 3f, 3f }, e.ToArray());
        Assert.Equal(new[] { 2, 6 }, t.Reshape(2, -1).Shape.ToArray());
        Assert.Equal(new[] { 12 }, t.Flatten().Shape.ToArray());
        Assert.True(tr.Contiguous().IsContiguous);
        Assert.Equal(tr.ToArray(), tr.Contiguous().ToArray());
        Assert.Equal(tr.ToArray(), tr.Reshape(12).ToArray());
    }

    [Fact]
    public void ViewErrorsNameTheProblem()
    {
        var t = Tensor.Zeros(3, 4);
        Assert.Contains("cannot reshape tensor of shape [3, 4] (12 elements) into [5, -1]", Assert.Throws<ShapeException>(() => t.Reshape(5, -1)).Message);
        Assert.Contains("not contiguous", Assert.Throws<ShapeException>(() => t.T.View(12)).Message);
        Assert.Contains("cannot expand shape [3, 4] to [3, 5]", Assert.Throws<ShapeException>(() => t.Expand(3, 5)).Message);
        Assert.Contains("dimension 2 is out of range for a tensor of rank 2", Assert.Throws<ArgumentOutOfRangeException>(() => t.Transpose(0, 2)).Message);
    }

    [Fact]
    public void BroadcastingFollowsNumPy()
    {
        var a = Tensor.FromArray([1f, 2f, 3f], 3, 1);
        var b = Tensor.FromArray([10f, 20f], 2);
        var c = a + b;
        Assert.Equal(new[] { 3, 2 }, c.Shape.ToArray());
        Assert.Equal(new[] { 11f, 21f, 12f, 22f, 13f, 23f }, c.ToArray());
        var m = Tensor.Arange(6).Reshape(2, 3) * Tensor.FromArray([1f, 10f, 100f]);
        Assert.Equal(new[] { 0f, 10f, 200f, 3f, 40f, 500f }, m.ToArray());
        Assert.Equal(new[] { 2f, 3f }, (Tensor.FromArray([1f, 2f]) + 1).ToArray());
        Assert.Equal(new[] { 1f, 0f }, (2 - Tensor.FromArray([1f, 2f])).ToArray());
        var strided = Tensor.Arange(6).Reshape(2, 3).T + Tensor.FromArray([100f, 200f]);
        Assert.Equal(new[] { 100f, 203f, 101f, 204f, 102f, 205f }, strided.ToArray());
        var ex = Assert.Throws<ShapeException>(() => Tensor.Zeros(2, 3) + Tensor.Zeros(4));
        Assert.Equal("Add: shapes [2, 3] and [4] cannot be broadcast together: dimension -1 is 3 in one and 4 in the other.", ex.Message);
    }

    [Fact]
    public void MatMulShapesAndErrors()
    {
        var a = Tensor.FromArray(new float[,] { { 1, 2 }, { 3, 4 } });
        var b = Tensor.FromArray(new float[,] { { 5, 6, 7 }, { 8, 9, 10 } });
        Assert.Equal(new[] { 21f, 24f, 27f, 47f, 54f, 61f }, a.MatMul(b).ToArray());
        Assert.Equal(new[] { 17f, 39f }, a.MatMul(Tensor.FromArray([5f, 6f])).ToArray()); // matrix · vector
        Assert.Equal(new[] { 23f, 34f }, Tensor.FromArray([5f, 6f]).MatMul(a).ToArray()); // vector · matrix
        Assert.Equal(17f, Tensor.FromArray([1f, 2f]).MatMul(Tensor.FromArray([5f, 6f])).Item());
        Assert.Equal(new[] { 5f, 11f, 11f, 25f }, a.MatMul(a.T).ToArray());
        var batched = Tensor.Stack([a, a.T]).MatMul(b);
        Assert.Equal(new[] { 2, 2, 3 }, batched.Shape.ToArray());
        Assert.Equal(new[] { 29f, 33f, 37f, 42f, 48f, 54f }, batched.Select(0, 1).ToArray());
        var ex = Assert.Throws<ShapeException>(() => Tensor.Zeros(32, 784).MatMul(Tensor.Zeros(256, 128)));
        Assert.Equal("MatMul: cannot multiply [32, 784] by [256, 128]: inner dimensions 784 and 256 differ.", ex.Message);
    }

    [Fact]
    public void ToStringLooksLikePyTorch()
    {
        Assert.Equal("tensor([1., 2., 3.])", Tensor.FromArray([1f, 2f, 3f]).ToString());
        Assert.Equal("tensor([[1.5000, 2.0000],\n        [3.0000, 4.2500]], shape=[2, 2])",
            Tensor.FromArray([1.5f, 2f, 3f, 4.25f], 2, 2).ToString());
        Assert.Equal("tensor(2.5000, shape=[])", Tensor.Scalar(2.5).ToString());
        Assert.Equal("tensor([1, 2], dtype=int64)", Tensor.FromArray(new long[] { 1, 2 }).ToString());
        var w = Tensor.Ones(2).RequiresGrad_();
        Assert.Equal("tensor([1., 1.], requires_grad=True)", w.ToString());
        Assert.Equal("tensor([2., 2.], grad_fn=<MulBackward>)", (w * 2).ToString());
        var big = Tensor.Arange(2000).ToString();
        Assert.Contains("...", big);
        Assert.Contains("shape=[2000]", big);
    }

    [Fact]
    public void InPlaceUpdatesAreGuarded()
    {
        var w = Tensor.Ones(3).RequiresGrad_();
        var ex = Assert.Throws<InvalidOperationException>(() => w.Fill_(2));
        Assert.Contains("NoGrad", ex.Message);
        using (Tensor.NoGrad()) w.Add_(Tensor.Ones(3), alpha: 2).Mul_(0.5);
        Assert.Equal(new[] { 1.5f, 1.5f, 1.5f }, w.ToArray());
    }

    [Fact]
    public void DTypeConversion()
    {
        var t = Tensor.FromArray([1.5f, -2.25f]);
        var d = t.To(DType.Float64);
        Assert.Equal(DType.Float64, d.DType);
        Assert.Equal(new[] { 1.5, -2.25 }, d.ToDoubleArray());
        Assert.Equal(new long[] { 1, -2 }, t.To(DType.Int64).ToLongArray());
        Assert.Contains("dtypes differ", Assert.Throws<ArgumentException>(() => t + d).Message);
    }

    [Fact]
    public void EmptyTensorsAreContiguousAndFlowThroughOpsAndBackward()
    {
        var x = Tensor.Zeros([2, 0], DType.Float64).RequiresGrad_();
        Assert.True(x.IsContiguous);
        Assert.True(x.Transpose(0, 1).IsContiguous);
        var y = (x.Exp() * 2 + x).Sum(1, keepDim: true);
        Assert.Equal(new[] { 2, 1 }, y.Shape.ToArray());
        Assert.Equal(new[] { 0.0, 0.0 }, y.ToDoubleArray());
        y.Backward(Tensor.Ones([2, 1], DType.Float64));
        Assert.Equal(new[] { 2, 0 }, x.Grad!.Shape.ToArray());
        Assert.Equal(new[] { 0, 2 }, x.Transpose(0, 1).Reshape(0, 2).Shape.ToArray());
        // stacking empty tensors along an inner dimension narrows views that start past the storage's end
        var e = Tensor.Zeros([0, 2], DType.Float64).RequiresGrad_();
        var s = Tensor.Stack([e, e], dim: 1);
        Assert.Equal(new[] { 0, 2, 2 }, s.Shape.ToArray());
        s.Backward(Tensor.Zeros([0, 2, 2], DType.Float64));
        Assert.Equal(new[] { 0, 2 }, e.Grad!.Shape.ToArray());
    }
}
