using Backprop.NN;

namespace Backprop.Tests;

/// <summary>The public initializers in <see cref="Init"/> and <see cref="ModuleSummaryExtensions.Summary(Module, int[])"/>.</summary>
public class InitAndSummaryTests
{
    private static double[,] Gram(Tensor w, bool rows)
    {
        var m = w.Reshape(w.Size(0), -1).To(DType.Float64);
        var g = rows ? m.MatMul(m.Transpose(0, 1)) : m.Transpose(0, 1).MatMul(m);
        int n = g.Size(0);
        var a = g.ToDoubleArray();
        var r = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) r[i, j] = a[i * n + j];
        return r;
    }

    [Theory]
    [InlineData(6, 4, false)]   // tall: columns orthonormal, WᵀW = I
    [InlineData(3, 8, true)]    // wide: rows orthonormal, WWᵀ = I
    [InlineData(5, 5, false)]
    public void OrthogonalGivesOrthonormalColumnsOrRows(int rows, int cols, bool wide)
    {
        var w = Tensor.Zeros(rows, cols);
        Init.Orthogonal_(w, gain: 1, generator: new Generator(3));
        var g = Gram(w, wide);
        for (int i = 0; i < g.GetLength(0); i++)
            for (int j = 0; j < g.GetLength(1); j++)
                Assert.True(Math.Abs(g[i, j] - (i == j ? 1 : 0)) < 1e-5, $"Gram[{i},{j}] = {g[i, j]}");
    }

    [Fact]
    public void OrthogonalScalesByGainFlattensKernelsAndIsSeeded()
    {
        var w = Tensor.Zeros([4, 2, 3], DType.Float64);
        Init.Orthogonal_(w, gain: 2.5, generator: new Generator(7));
        var g = Gram(w, rows: true);                         // [4, 6]: rows orthogonal with norm 2.5
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                Assert.True(Math.Abs(g[i, j] - (i == j ? 6.25 : 0)) < 1e-10, $"Gram[{i},{j}] = {g[i, j]}");
        var again = Init.Orthogonal_(Tensor.Zeros([4, 2, 3], DType.Float64), gain: 2.5, generator: new Generator(7));
        Assert.Equal(w.ToDoubleArray(), again.ToDoubleArray());
        Assert.NotEqual(w.ToDoubleArray(), Init.Orthogonal_(Tensor.Zeros([4, 2, 3], DType.Float64), 2.5, new Generator(8)).ToDoubleArray());
        Assert.Throws<ArgumentException>(() => Init.Orthogonal_(Tensor.Zeros(5)));
    }

    [Fact]
    public void NormalUniformConstantOnesZerosFill()
    {
        var w = Tensor.Zeros(200, 50);
        Init.Normal_(w, mean: 3, std: 0.5, generator: new Generator(1));
        var v = w.ToDoubleArray();
        double mean = v.Average(), std = Math.Sqrt(v.Select(x => (x - mean) * (x - mean)).Average());
        Assert.InRange(mean, 2.98, 3.02);
        Assert.InRange(std, 0.49, 0.51);
        Init.Uniform_(w, a: -2, b: 5, generator: new Generator(1));
        v = w.ToDoubleArray();
        Assert.True(v.Min() >= -2 && v.Max() < 5 && v.Min() < -1.9 && v.Max() > 4.9);
        Assert.InRange(v.Average(), 1.45, 1.55);
        Assert.Equal(Init.Uniform_(Tensor.Zeros(3), -1, 1, new Generator(5)).ToDoubleArray(), Init.Uniform_(Tensor.Zeros(3), -1, 1, new Generator(5)).ToDoubleArray());
        Assert.All(Init.Constant_(w, 0.25).ToDoubleArray(), x => Assert.Equal(0.25, x));
        Assert.All(Init.Ones_(w).ToDoubleArray(), x => Assert.Equal(1, x));
        Assert.All(Init.Zeros_(w).ToDoubleArray(), x => Assert.Equal(0, x));
        var p = new Parameter(Tensor.Zeros(2, 2));
        Init.Ones_(p);
        Assert.Null(p.GradFn);
        Assert.True(p.RequiresGrad);
    }

    private sealed class Block : Module
    {
        public Linear Fc { get; } = new(8, 8);
        public Linear Frozen { get; } = new(8, 4);
        public Block() { foreach (var p in Frozen.Parameters()) p.RequiresGrad = false; }
        public override Tensor Forward(Tensor x) => Frozen.Call(Fc.Call(x).Relu());
    }

    [Fact]
    public void SummaryListsEveryLayerWithItsOutputShapeAndParameters()
    {
        var model = new Sequential(new Linear(784, 16), new Sigmoid(), new Dropout(0.5), new Linear(16, 8), new Block());
        model.Train();
        var s = model.Summary(2, 784);
        Assert.True(model.Training);                                        // the mode is restored
        Assert.Equal(new Shape(2, 784), s.InputShape);
        Assert.Equal(new Shape(2, 4), s.OutputShape);
        Assert.Equal(
            ["", "0", "1", "2", "3", "4", "4.fc", "4.frozen"],
            s.Rows.Select(r => r.Name));
        Assert.Equal(["Sequential", "Linear", "Sigmoid", "Dropout", "Linear", "Block", "Linear", "Linear"], s.Rows.Select(r => r.Type));
        Assert.Equal([0, 1, 1, 1, 1, 1, 2, 2], s.Rows.Select(r => r.Depth));
        Assert.Equal(["[2, 4]", "[2, 16]", "[2, 16]", "[2, 16]", "[2, 8]", "[2, 4]", "[2, 8]", "[2, 4]"], s.Rows.Select(r => r.OutputShape?.ToString()));
        Assert.Equal([0L, 784 * 16 + 16, 0, 0, 16 * 8 + 8, 0, 72, 36], s.Rows.Select(r => r.Params));
        Assert.Equal(12560 + 136 + 72 + 36, s.TotalParams);
        Assert.Equal(model.NumParameters(), s.TotalParams);
        Assert.Equal(12560 + 136 + 72, s.TrainableParams);
        Assert.Equal(36, s.NonTrainableParams);
        var table = s.ToString();
        Assert.Contains("Total params: 12,804", table);
        Assert.Contains("Trainable params: 12,768", table);
        Assert.Contains("Non-trainable params: 36", table);
        Assert.Matches(@"\n    4\.fc +Linear +\[2, 8\] +72\n", table);
        Assert.False(model.HasHooks);                                      // the hooks are removed
    }

    [Fact]
    public void SummaryRunsWithoutRecordingAndLeavesBatchNormStatsAndModesAlone()
    {
        var model = new Sequential(new Linear(3, 2), new Tanh());
        model.Eval();
        var s = model.Summary(5, 3);
        Assert.False(model.Training);
        Assert.Equal(new Shape(5, 2), s.OutputShape);
        Assert.All(model.Parameters(), p => Assert.Null(p.Grad));
        var d = new Sequential(new Linear(3, 2)).To(DType.Float64);
        Assert.Equal(new Shape(1, 2), d.Summary(1, 3).OutputShape);      // zeros in the parameters' dtype
        Assert.Contains("Linear: ", Assert.ThrowsAny<Exception>(() => model.Summary(5, 4)).Message);
    }

    private sealed class Reuse : Module
    {
        public Linear Shared { get; } = new(4, 4);
        public Linear Direct { get; } = new(4, 2);
        public override Tensor Forward(Tensor x) => Direct.Forward(Shared.Call(Shared.Call(x)));   // Direct bypasses hooks
    }

    [Fact]
    public void SummaryCountsCallsMarksModulesRunWithoutCallAndTakesIndexInputs()
    {
        var s = new Reuse().Summary(3, 4);
        var shared = s.Rows.Single(r => r.Name == "shared");
        Assert.Equal((2, new Shape(3, 4)), (shared.Calls, shared.OutputShape!.Value));
        var direct = s.Rows.Single(r => r.Name == "direct");
        Assert.Equal((0, (Shape?)null), (direct.Calls, direct.OutputShape));
        Assert.Matches(@"\n  direct +Linear +-- +10\n", s.ToString());

        var lm = new Sequential(new Embedding(10, 3), new Flatten(), new Linear(15, 2));
        var t = lm.Summary([2, 5], DType.Int64);
        Assert.Equal(["[2, 5, 3]", "[2, 15]", "[2, 2]"], t.Rows.Skip(1).Select(r => r.OutputShape.ToString()));
        Assert.Equal(30 + 32, t.TotalParams);
    }
}
