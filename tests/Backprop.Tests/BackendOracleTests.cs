using Backprop.Backends;
using Backprop.NN;

namespace Backprop.Tests;

/// <summary>
/// The differential oracle: every op runs on the fast CPU backend and on the plain reference backend,
/// on random shapes, strided views and broadcasts, forward and backward; the results must agree.
/// </summary>
public class BackendOracleTests
{
    public static IEnumerable<object[]> Seeds => Enumerable.Range(1, 8).Select(s => new object[] { s });

    private static int[] RandShape(Generator g, int minRank = 1, int maxRank = 4) =>
        Enumerable.Range(0, minRank + g.NextInt(maxRank - minRank + 1)).Select(_ => 1 + g.NextInt(5)).ToArray();

    /// <summary>Some dimensions set to 1 and some leading ones dropped: a shape that broadcasts against <paramref name="s"/>.</summary>
    private static int[] Partner(Generator g, int[] s) => s.Select(d => g.NextInt(3) == 0 ? 1 : d).ToArray()[g.NextInt(s.Length + 1)..];

    private static Tensor R(Generator g, DType dtype, params int[] shape) => Tensor.Randn(shape, g, dtype);

    /// <summary>A tensor of <paramref name="shape"/> that is a transposed (non-contiguous) view when it has two or more dimensions.</summary>
    private static Tensor Strided(Generator g, DType dtype, int[] shape)
    {
        if (shape.Length < 2) return R(g, dtype, shape);
        var swapped = (int[])shape.Clone();
        (swapped[0], swapped[^1]) = (swapped[^1], swapped[0]);
        return R(g, dtype, swapped).Transpose(0, -1);
    }

    /// <summary>
    /// f on CPU tensors and on reference copies of them: outputs equal to <paramref name="tol"/>, and the
    /// gradients of ⟨r, f⟩ with respect to every floating-point input too.
    /// </summary>
    internal static void Agree(Func<Tensor[], Tensor> f, double tol, params Tensor[] inputs)
    {
        var cpu = inputs.Select(t => t.DType.IsFloatingPoint() ? t.Detach().RequiresGrad_() : t).ToArray();
        var reference = inputs.Select(t =>
        {
            var r = t.To(Device.Reference);
            Assert.Equal(Device.Reference, r.Device);
            return t.DType.IsFloatingPoint() ? r.RequiresGrad_() : r;
        }).ToArray();
        var yc = f(cpu);
        var yr = f(reference);
        Assert.Equal(Device.Cpu, yc.Device);
        Assert.Equal(Device.Reference, yr.Device);
        Assert.Equal(yc.Shape, yr.Shape);
        TestUtil.Close(yr.ToDoubleArray(), yc, tol);
        if (!yc.RequiresGrad) return;
        var proj = Tensor.Randn([.. yc.Shape.AsSpan()], new Generator(7), yc.DType);
        (yc * proj).Sum().Backward();
        (yr * proj.To(Device.Reference)).Sum().Backward();
        for (int i = 0; i < cpu.Length; i++)
        {
            if (!cpu[i].DType.IsFloatingPoint()) continue;
            Assert.Equal(cpu[i].Grad == null, reference[i].Grad == null);
            if (cpu[i].Grad != null) TestUtil.Close(reference[i].Grad!.ToDoubleArray(), cpu[i].Grad!, tol);
        }
    }

    private static double Tol(DType d) => d == DType.Float32 ? 2e-4 : 1e-10;

    [Theory, MemberData(nameof(Seeds))]
    public void ElementwiseMapsOnStridedInputs(int seed)
    {
        var g = new Generator((ulong)seed);
        foreach (var dt in new[] { DType.Float32, DType.Float64 })
        {
            var s = RandShape(g);
            double tol = Tol(dt);
            Func<Tensor[], Tensor>[] maps =
            [
                x => x[0].Tanh(), x => x[0].Sigmoid(), x => x[0].Relu(), x => x[0].LeakyRelu(0.1), x => x[0].Gelu(),
                x => x[0].Gelu(approximateTanh: true), x => x[0].Softplus(2, 3), x => x[0].Exp(), x => x[0].Abs(), x => x[0].Sign(),
                x => x[0].Erf(), x => x[0].Clamp(-0.5, 0.7), x => x[0].Pow(3), x => -x[0], x => x[0] * 2.5 + 1,
                x => (x[0] * x[0] + 1).Log(), x => (x[0] * x[0] + 1).Sqrt(), x => x[0].Contiguous(), x => x[0].Clone(),
                x => x[0].To(dt == DType.Float32 ? DType.Float64 : DType.Float32),
                x => x[0].Sin(), x => x[0].Cos(), x => (x[0] * 3).Floor(), x => (x[0] * 3).Ceil(), x => (x[0] * 3).Round(),
            ];
            foreach (var f in maps) Agree(f, tol, Strided(g, dt, s));
        }
    }

    [Theory, MemberData(nameof(Seeds))]
    public void TensorApiCompositesAndSorting(int seed)
    {
        var g = new Generator((ulong)seed + 300);
        foreach (var dt in new[] { DType.Float32, DType.Float64 })
        {
            double tol = Tol(dt);
            var s = RandShape(g, 2, 3);
            Agree(x => x[0].Cumsum(-1) + x[0].Cumsum(0) + x[0].Flip(0) + x[0].Roll(1, 0) + x[0].Tril(), tol, Strided(g, dt, s));
            Agree(x => x[0].Norm(3, [0]) + x[0].Std([0], correction: 0), tol, R(g, dt, [.. s.Select(v => v + 1)]));
            Agree(x => x[0].Sort(-1, descending: true).Values * 2 + x[0].TopK(1).Values, tol, Strided(g, dt, s));
            Agree(x => Tensor.Einsum("bhqd,bhkd->bhqk", x[0], x[1]), tol, R(g, dt, 2, 2, 3, 4), R(g, dt, 2, 2, 5, 4));
            Agree(x => x[0][.., 1..] * 2 + x[0][x[0].Gt(0)].Sum(), tol, R(g, dt, 3, 4));
        }
    }

    [Theory, MemberData(nameof(Seeds))]
    public void BinaryOpsBroadcastAndCompare(int seed)
    {
        var g = new Generator((ulong)seed + 100);
        foreach (var dt in new[] { DType.Float32, DType.Float64 })
        {
            var s = RandShape(g);
            var p = Partner(g, s);
            double tol = Tol(dt);
            Agree(x => x[0] + x[1], tol, Strided(g, dt, s), R(g, dt, p));
            Agree(x => x[0] - x[1], tol, R(g, dt, p), Strided(g, dt, s));
            Agree(x => x[0] * x[1], tol, Strided(g, dt, s), R(g, dt, p));
            Agree(x => x[0] / (x[1] * x[1] + 0.5), tol, R(g, dt, s), R(g, dt, p));
            Agree(x => (x[0] * x[0] + 0.5).Pow(x[1]), tol, R(g, dt, s), R(g, dt, p));
            Agree(x => Tensor.Maximum(x[0], x[1]) + Tensor.Minimum(x[0], x[1]) * 2, tol, R(g, dt, s), R(g, dt, p));
            Agree(x => x[0].Gt(x[1]) + x[0].Le(x[1]) * 2 + x[0].Eq(x[0]) * 4, tol, R(g, dt, s), R(g, dt, p));
            Agree(x => Tensor.Where(x[0].Gt(0), x[1], x[0] * 3), tol, Strided(g, dt, s), R(g, dt, p));
        }
    }

    [Theory, MemberData(nameof(Seeds))]
    public void ReductionsAndSoftmax(int seed)
    {
        var g = new Generator((ulong)seed + 200);
        foreach (var dt in new[] { DType.Float32, DType.Float64 })
        {
            var s = RandShape(g, 2, 4);
            double tol = Tol(dt);
            int d = g.NextInt(s.Length);
            Agree(x => x[0].Sum(), tol, Strided(g, dt, s));
            Agree(x => x[0].Sum(d, keepDim: true), tol, Strided(g, dt, s));
            Agree(x => x[0].Mean([0, s.Length - 1]), tol, Strided(g, dt, s));
            Agree(x => x[0].Var(d, correction: 0), tol, R(g, dt, s));
            Agree(x => x[0].Max(d).Values + x[0].Min(d).Values, tol, Strided(g, dt, s));
            Agree(x => x[0].Argmax(d).To(dt), tol, Strided(g, dt, s));
            Agree(x => x[0].Max(), tol, R(g, dt, s));
            Agree(x => x[0].LogSumExp(d), tol, Strided(g, dt, s));
            Agree(x => x[0].Softmax(d), tol, Strided(g, dt, s));
            Agree(x => x[0].LogSoftmax(-1), tol, Strided(g, dt, s));
        }
    }

    [Theory, MemberData(nameof(Seeds))]
    public void MatrixProductsOfEveryLayout(int seed)
    {
        var g = new Generator((ulong)seed + 300);
        foreach (var dt in new[] { DType.Float32, DType.Float64 })
        {
            int m = 1 + g.NextInt(6), k = 1 + g.NextInt(6), n = 1 + g.NextInt(6), b = 1 + g.NextInt(3);
            double tol = Tol(dt) * 10;
            Agree(x => x[0].MatMul(x[1]), tol, R(g, dt, m, k), R(g, dt, k, n));
            Agree(x => x[0].T.MatMul(x[1].T), tol, R(g, dt, k, m), R(g, dt, n, k));
            Agree(x => x[0].MatMul(x[1]), tol, R(g, dt, b, m, k), R(g, dt, k, n)); // broadcast batch
            Agree(x => x[0].MatMul(x[1].Transpose(-1, -2)), tol, R(g, dt, 2, 1, m, k), R(g, dt, b, n, k));
            Agree(x => x[0].MatMul(x[1]), tol, R(g, dt, k), R(g, dt, b, k, n)); // vector · batch
            Agree(x => x[0].MatMul(x[1]), tol, R(g, dt, k), R(g, dt, k));
            foreach (var act in Enum.GetValues<FusedActivation>())
                Agree(x => Functional.Linear(x[0], x[1], x[2], act), tol, Strided(g, dt, [b, m, k]).Reshape(-1, k), R(g, dt, n, k), R(g, dt, n));
        }
    }

    [Theory, MemberData(nameof(Seeds))]
    public void LossesAndIndexing(int seed)
    {
        var g = new Generator((ulong)seed + 400);
        foreach (var dt in new[] { DType.Float32, DType.Float64 })
        {
            int n = 1 + g.NextInt(6), c = 2 + g.NextInt(5);
            double tol = Tol(dt);
            var labels = Tensor.RandInt(0, c, [n], g);
            Agree(x => Loss.CrossEntropy(x[0], x[1]), tol, R(g, dt, n, c), labels);
            Agree(x => Loss.CrossEntropy(x[0], x[1], Reduction.None, labelSmoothing: 0.1), tol, R(g, dt, n, c), labels);
            var withIgnored = Tensor.FromArray(labels.ToLongArray().Select((v, i) => i == 0 ? -100L : v).ToArray());
            Agree(x => Loss.CrossEntropy(x[0], x[1], Reduction.Sum), tol, R(g, dt, n, c), withIgnored);
            Agree(x => Loss.CrossEntropy(x[0], x[1].Softmax(1)), tol, R(g, dt, n, c), R(g, dt, n, c));
            Agree(x => Loss.BinaryCrossEntropy(x[0].Sigmoid(), x[1].Sigmoid()), tol, R(g, dt, n, c), R(g, dt, n, c));
            Agree(x => Loss.Mse(x[0], x[1]), tol, R(g, dt, n, c), R(g, dt, n, c));
            var idx = Tensor.RandInt(-c, c, [n, 2], g);
            Agree(x => x[0].Gather(1, x[1]), tol, R(g, dt, n, c), idx);
            Agree(x => x[0].ScatterAdd(1, x[2], x[1]), tol, R(g, dt, n, c), R(g, dt, n, 3), idx);
            var sel = Tensor.RandInt(0, c, [5], g);
            Agree(x => x[0].IndexSelect(1, x[1]), tol, Strided(g, dt, [n, c]), sel);
            var ids = Tensor.RandInt(0, c, [n, 3], g);
            Agree(x => Functional.Embedding(x[1], x[0]), tol, R(g, dt, c, 4), ids);
            Agree(x => Tensor.Concat([x[0], x[1].T, x[0]], 1), tol, R(g, dt, n, c), R(g, dt, 2, n));
            Agree(x => x[0].Slice(1, 1, c, 2).Narrow(0, 0, n).Expand(2, n, (c - 1 + 1) / 2), tol, R(g, dt, n, c));
        }
    }

    [Fact]
    public void ErrorsAreTheSameOnBothDevices()
    {
        var w = Tensor.Zeros(3, 2);
        var ids = Tensor.FromArray(new long[] { 1, 7 });
        string cpu = Assert.Throws<IndexOutOfRangeException>(() => Functional.Embedding(ids, w)).Message;
        string reference = Assert.Throws<IndexOutOfRangeException>(() => Functional.Embedding(ids.To(Device.Reference), w.To(Device.Reference))).Message;
        Assert.Equal(cpu, reference);
        Assert.Contains("index 7 (at flat position 1) is out of range for 3 embeddings", cpu);
        var mixed = Assert.Throws<ArgumentException>(() => Tensor.Zeros(2) + Tensor.Zeros(2).To(Device.Reference));
        Assert.Contains("different devices (Cpu and Reference)", mixed.Message);
    }

    [Fact]
    public void TheReferenceBackendIsNotTheCpuOne()
    {
        // a reference tensor has no CPU array behind it: code that reaches for one fails instead of silently working
        var t = Tensor.Ones(3).To(Device.Reference);
        Assert.Throws<InvalidCastException>(() => t.Span<float>());
        Assert.Equal([1f, 1f, 1f], t.ToArray());
        Assert.Equal(Device.Cpu, t.To(Device.Cpu).Device);
    }
}
