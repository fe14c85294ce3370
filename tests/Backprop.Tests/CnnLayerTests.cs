using System.Text.Json;
using Backprop.Autograd;
using Backprop.Backends;
using Backprop.NN;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>
/// The non-convolution CNN layers: max, average and adaptive average pooling, batch norm, channel
/// dropout, flatten/unflatten. Gradient and second-derivative checks in float64 at odd sizes, and
/// PyTorch's values (fixtures/cnnlayers.json, written by tools/fixtures_cnnlayers.py).
/// </summary>
public class CnnLayerTests
{
    // ------------------------------------------------------------------ fixtures

    private static readonly Lazy<JsonElement> Fixture = new(() => JsonDocument.Parse(File.ReadAllBytes(
        Path.Combine(DataTestFiles.RepoRoot, "tests", "Backprop.Tests", "fixtures", "cnnlayers.json"))).RootElement);

    private static int[] Shape(JsonElement t) => t.GetProperty("shape").EnumerateArray().Select(v => v.GetInt32()).ToArray();

    private static double[] Values(JsonElement t) => t.GetProperty("values").EnumerateArray().Select(v => v.GetDouble()).ToArray();

    private static Tensor T(JsonElement t) => Tensor.FromArray(Values(t), Shape(t));

    private static (int, int) Pair(JsonElement v) =>
        v.ValueKind == JsonValueKind.Array ? (v[0].GetInt32(), v[1].GetInt32()) : (v.GetInt32(), v.GetInt32());

    public static TheoryData<int> PoolCases()
    {
        var d = new TheoryData<int>();
        for (int i = 0; i < Fixture.Value.GetProperty("pool").GetArrayLength(); i++) d.Add(i);
        return d;
    }

    [Theory, MemberData(nameof(PoolCases))]
    public void PoolingMatchesPyTorch(int index)
    {
        var c = Fixture.Value.GetProperty("pool")[index];
        var x = T(c.GetProperty("x")).RequiresGrad_();
        Tensor y;
        switch (c.GetProperty("op").GetString())
        {
            case "max":
                var kernel = Pair(c.GetProperty("kernel"));
                var stride = c.GetProperty("stride").ValueKind == JsonValueKind.Null ? ((int, int)?)null : Pair(c.GetProperty("stride"));
                var (yy, indices) = Functional.MaxPool2dWithIndices(x, kernel, stride, Pair(c.GetProperty("padding")), Pair(c.GetProperty("dilation")));
                y = yy;
                Assert.Equal(Values(c.GetProperty("indices")), indices.ToDoubleArray());
                break;
            case "avg":
                var k = Pair(c.GetProperty("kernel"));
                var s = c.GetProperty("stride").ValueKind == JsonValueKind.Null ? ((int, int)?)null : Pair(c.GetProperty("stride"));
                y = Functional.AvgPool2d(x, k, s, Pair(c.GetProperty("padding")), c.GetProperty("count_include_pad").GetBoolean());
                break;
            default:
                var o = c.GetProperty("output_size");
                y = Functional.AdaptiveAvgPool2d(x, (o[0].GetInt32(), o[1].GetInt32()));
                break;
        }
        Assert.Equal(Shape(c.GetProperty("y")), y.Shape.AsSpan().ToArray());
        Close(Values(c.GetProperty("y")), y, 1e-12);
        y.Backward(T(c.GetProperty("up")));
        Close(Values(c.GetProperty("dx")), x.Grad!, 1e-12);
    }

    public static TheoryData<int> BatchNormCases()
    {
        var d = new TheoryData<int>();
        for (int i = 0; i < Fixture.Value.GetProperty("batchnorm").GetArrayLength(); i++) d.Add(i);
        return d;
    }

    [Theory, MemberData(nameof(BatchNormCases))]
    public void BatchNormMatchesPyTorch(int index)
    {
        var c = Fixture.Value.GetProperty("batchnorm")[index];
        int ch = Shape(c.GetProperty("weight"))[0];
        double? momentum = c.GetProperty("momentum").ValueKind == JsonValueKind.Null ? null : c.GetProperty("momentum").GetDouble();
        BatchNormBase bn = c.GetProperty("kind").GetString() == "1d"
            ? new BatchNorm1d(ch, momentum: momentum, dtype: DType.Float64)
            : new BatchNorm2d(ch, momentum: momentum, dtype: DType.Float64);
        using (Tensor.NoGrad())
        {
            bn.Weight!.CopyFrom(T(c.GetProperty("weight")));
            bn.Bias!.CopyFrom(T(c.GetProperty("bias")));
        }
        void Step(JsonElement s)
        {
            bn.ZeroGrad();
            var x = T(s.GetProperty("x")).RequiresGrad_();
            var y = bn.Forward(x);
            Close(Values(s.GetProperty("y")), y, 1e-10);
            y.Backward(T(s.GetProperty("up")));
            Close(Values(s.GetProperty("dx")), x.Grad!, 1e-10);
            Close(Values(s.GetProperty("dweight")), bn.Weight!.Grad!, 1e-10);
            Close(Values(s.GetProperty("dbias")), bn.Bias!.Grad!, 1e-10);
        }
        bn.Train();
        foreach (var s in c.GetProperty("steps").EnumerateArray()) Step(s);
        Close(Values(c.GetProperty("running_mean")), bn.RunningMean!, 1e-12);
        Close(Values(c.GetProperty("running_var")), bn.RunningVar!, 1e-12);
        Assert.Equal(c.GetProperty("num_batches_tracked").GetInt64(), (long)bn.NumBatchesTracked!.ItemDouble());
        bn.Eval();
        Step(c.GetProperty("eval"));
    }

    [Fact]
    public void StateDictNamesShapesAndDTypesAreThoseOfPyTorch()
    {
        var model = new Sequential(new BatchNorm2d(3), new MaxPool2d(2), new AvgPool2d(2), new AdaptiveAvgPool2d(1), new Dropout2d(0.1), new Flatten(),
            new BatchNorm1d(3), new Unflatten(1, [3, 1]), new BatchNorm1d(3, affine: false));
        var expected = Fixture.Value.GetProperty("state_dict").EnumerateArray()
            .Select(e => $"{e.GetProperty("name").GetString()} {string.Join("x", Shape(e))} {e.GetProperty("dtype").GetString()}").Order().ToList();
        var sd = model.StateDict();
        var actual = sd.Keys.Select(k => $"{k} {string.Join("x", sd.Tensors[k].Shape.AsSpan().ToArray())} {sd.Tensors[k].DType.Name()}").Order().ToList();
        Assert.Equal(expected, actual);
        // a single layer lists them in PyTorch's order
        Assert.Equal(["weight", "bias", "running_mean", "running_var", "num_batches_tracked"], new BatchNorm2d(4).StateDict().Keys.ToArray());
        // and a state dict loads back, running statistics and count included
        var other = new BatchNorm2d(3);
        using (Tensor.NoGrad()) other.RunningMean!.Fill_(0.25);
        other.Train().Forward(Tensor.Randn([2, 3, 3, 3], new Generator(1)));
        var copy = new BatchNorm2d(3);
        copy.LoadStateDict(other.StateDict());
        Assert.Equal(other.RunningMean!.ToDoubleArray(), copy.RunningMean!.ToDoubleArray());
        Assert.Equal(other.RunningVar!.ToDoubleArray(), copy.RunningVar!.ToDoubleArray());
        Assert.Equal(1.0, copy.NumBatchesTracked!.ItemDouble());
    }

    // ------------------------------------------------------------------ gradient and second-derivative checks

    [Fact]
    public void MaxPoolGradChecks()
    {
        var g = new Generator(11);
        Check(x => Functional.MaxPool2d(x[0], 2), R(g, 2, 3, 5, 7));
        Check(x => Functional.MaxPool2d(x[0], 3, 2, 1), R(g, 1, 2, 7, 5));
        Check(x => Functional.MaxPool2d(x[0], 3, 1, 1, 2), R(g, 1, 3, 7, 7));
        Check(x => Functional.MaxPool2d(x[0], (2, 3), (1, 2), (1, 1), (2, 1)), R(g, 2, 1, 5, 7));
        Check(x => Functional.MaxPool2d(x[0], 2, 1), R(g, 3, 5, 5)); // unbatched
        // the pooled values used twice, and a stride that overlaps windows: gradients add
        Check(x => Functional.MaxPool2d(x[0] * x[0], 3, 1).Tanh(), R(g, 1, 2, 5, 5));
    }

    [Fact]
    public void AvgPoolGradChecks()
    {
        var g = new Generator(12);
        Check(x => Functional.AvgPool2d(x[0], 2), R(g, 2, 3, 5, 7));
        Check(x => Functional.AvgPool2d(x[0], 3, 2, 1), R(g, 1, 2, 7, 5));
        Check(x => Functional.AvgPool2d(x[0], 3, 2, 1, countIncludePad: false), R(g, 1, 2, 7, 5));
        Check(x => Functional.AvgPool2d(x[0], (3, 2), (1, 2), (1, 1)).Square(), R(g, 2, 1, 5, 7));
        Check(x => Functional.AdaptiveAvgPool2d(x[0], (3, 2)).Square(), R(g, 2, 3, 7, 5));
        Check(x => Functional.AdaptiveAvgPool2d(x[0], 1), R(g, 2, 3, 5, 5));
        Check(x => Functional.AdaptiveAvgPool2d(x[0], (4, null)).Tanh(), R(g, 3, 7, 5)); // unbatched, width kept
    }

    [Fact]
    public void BatchNormGradChecks()
    {
        var g = new Generator(13);
        // training: batch statistics depend on x, so dx carries the mean and variance terms
        Check(x => Functional.BatchNorm(x[0], null, null, x[1], x[2], training: true), R(g, 3, 2, 3, 5), R(g, 2), R(g, 2));
        Check(x => Functional.BatchNorm(x[0], null, null, training: true).Square(), R(g, 5, 3));
        Check(x => Functional.BatchNorm(x[0], null, null, x[1], x[2], training: true).Tanh(), R(g, 3, 3, 5), R(g, 3), R(g, 3));
        // evaluation: fixed running statistics
        var mean = R(g, 3);
        var variance = Pos(g, 3);
        Check(x => Functional.BatchNorm(x[0], mean, variance, x[1], x[2], training: false).Square(), R(g, 3, 3, 5, 3), R(g, 3), R(g, 3));
        Check(x => Functional.BatchNorm(x[0], mean, variance, training: false), R(g, 3, 3, 2, 3));
    }

    [Fact]
    public void Dropout2dGradCheck()
    {
        var g = new Generator(14);
        Check(x => Functional.Dropout2d(x[0], 0.4, training: true, new Generator(5)).Square(), R(g, 3, 5, 3, 3));
    }

    // ------------------------------------------------------------------ behaviour

    [Fact]
    public void MaxPoolPropagatesNaNAndPicksTheFirstOfTies()
    {
        var x = Tensor.FromArray([1.0, 3, 3, 2, double.NaN, 0, 5, 5, 1], 1, 1, 3, 3);
        var (y, idx) = Functional.MaxPool2dWithIndices(x, (2, 2), (1, 1));
        Assert.True(double.IsNaN(y.ToDoubleArray()[0]));
        Assert.Equal([4.0, 4, 4, 4], idx.ToDoubleArray()); // every window holds the NaN at (1, 1)
        var (y2, idx2) = Functional.MaxPool2dWithIndices(Tensor.FromArray([3.0, 3, 3, 3], 1, 1, 2, 2), (2, 2));
        Assert.Equal([3.0], y2.ToDoubleArray());
        Assert.Equal([0.0], idx2.ToDoubleArray());
    }

    [Fact]
    public void BatchNormEvaluationUsesRunningStatisticsAndTrainingUpdatesThem()
    {
        var bn = new BatchNorm2d(2, momentum: 0.5);
        var x = Tensor.Randn([4, 2, 3, 3], new Generator(3)) * 2 + 1;
        var y = bn.Forward(x);
        // training output: each channel has mean 0 and (biased) variance 1
        var perChannel = y.Permute(1, 0, 2, 3).Reshape(2, -1);
        foreach (var m in perChannel.Mean(1).ToDoubleArray()) Assert.True(Math.Abs(m) < 1e-5);
        foreach (var v in perChannel.Var(1, correction: 0).ToDoubleArray()) Assert.True(Math.Abs(v - 1) < 1e-3);
        var batchMean = x.Permute(1, 0, 2, 3).Reshape(2, -1).Mean(1).ToDoubleArray();
        var batchVar = x.Permute(1, 0, 2, 3).Reshape(2, -1).Var(1).ToDoubleArray(); // unbiased
        Close(batchMean.Select(m => 0.5 * m).ToArray(), bn.RunningMean!, 1e-5);
        Close(batchVar.Select(v => 0.5 + 0.5 * v).ToArray(), bn.RunningVar!, 1e-5);
        bn.Eval();
        var before = bn.RunningMean!.ToDoubleArray();
        var ye = bn.Forward(x);
        Assert.Equal(before, bn.RunningMean!.ToDoubleArray());
        Assert.Equal(1.0, bn.NumBatchesTracked!.ItemDouble());
        var rm = bn.RunningMean!.ToDoubleArray();
        var rv = bn.RunningVar!.ToDoubleArray();
        var xs = x.ToDoubleArray();
        var ys = ye.ToDoubleArray();
        for (int i = 0; i < xs.Length; i++)
        {
            int c = i / 9 % 2;
            Close((xs[i] - rm[c]) / Math.Sqrt(rv[c] + 1e-5), ys[i], 1e-5);
        }
    }

    [Fact]
    public void BatchNormErrorsNameTheProblem()
    {
        var bn = new BatchNorm2d(3);
        Assert.Contains("expected 3 channels", Assert.Throws<ShapeException>(() => bn.Forward(Tensor.Zeros(2, 4, 3, 3))).Message);
        Assert.Contains("4-D input", Assert.Throws<ShapeException>(() => bn.Forward(Tensor.Zeros(2, 3))).Message);
        Assert.Contains("more than one value per channel", Assert.Throws<ShapeException>(() => new BatchNorm1d(3).Forward(Tensor.Zeros(1, 3))).Message);
        Assert.Contains("weight must have shape [3]",
            Assert.Throws<ShapeException>(() => Functional.BatchNorm(Tensor.Zeros(2, 3), null, null, Tensor.Ones(4), Tensor.Zeros(4), training: true)).Message);
        // evaluation with a batch of one is fine
        new BatchNorm1d(3).Eval().Forward(Tensor.Zeros(1, 3));
    }

    [Fact]
    public void PoolingErrorsNameTheProblem()
    {
        Assert.Contains("too small", Assert.Throws<ShapeException>(() => Functional.MaxPool2d(Tensor.Zeros(1, 1, 2, 2), 3)).Message);
        Assert.Contains("padding", Assert.Throws<ArgumentException>(() => Functional.AvgPool2d(Tensor.Zeros(1, 1, 5, 5), 2, 1, 2)).Message);
        Assert.Contains("4-D input", Assert.Throws<ShapeException>(() => Functional.MaxPool2d(Tensor.Zeros(5, 5), 2)).Message);
        Assert.Contains("invalid settings", Assert.Throws<ArgumentException>(() => new MaxPool2d(0)).Message);
    }

    [Fact]
    public void Dropout2dZeroesWholeChannelsReproducibly()
    {
        var x = Tensor.Ones([4, 6, 3, 3]);
        var layer = new Dropout2d(0.5, new Generator(21));
        var y = layer.Forward(x).ToDoubleArray();
        int zeroed = 0;
        for (int plane = 0; plane < 24; plane++)
        {
            var vals = y.Skip(plane * 9).Take(9).Distinct().ToArray();
            Assert.Single(vals); // a channel is dropped or kept whole
            Assert.True(vals[0] is 0.0 or 2.0);
            if (vals[0] == 0) zeroed++;
        }
        Assert.InRange(zeroed, 4, 20);
        Assert.Equal(y, new Dropout2d(0.5, new Generator(21)).Forward(x).ToDoubleArray());
        Assert.Equal(x.ToDoubleArray(), layer.Eval().Forward(x).ToDoubleArray());
    }

    [Fact]
    public void FlattenAndUnflattenAreInverses()
    {
        var x = Tensor.Randn([2, 3, 4, 5], new Generator(2));
        var flat = new Flatten().Forward(x);
        Assert.Equal([2, 60], flat.Shape.AsSpan().ToArray());
        var back = new Unflatten(1, [3, -1, 5]).Forward(flat);
        Assert.Equal([2, 3, 4, 5], back.Shape.AsSpan().ToArray());
        Assert.Equal(x.ToDoubleArray(), back.ToDoubleArray());
        Assert.Equal([2, 3, 20], new Flatten(2).Forward(x).Shape.AsSpan().ToArray());
        Assert.Contains("cannot split dimension 1 of size 60",
            Assert.Throws<ShapeException>(() => new Unflatten(1, [7, 8]).Forward(flat)).Message);
    }

    [Fact]
    public void ASmallCnnTrainsAndItsLossFalls()
    {
        // pooling, batch norm, channel dropout and flatten together, with Linear: the loss must fall
        var g = new Generator(4);
        using var _ = Generator.Use(new Generator(4));
        var model = new Sequential(new BatchNorm2d(2), new Relu(), new MaxPool2d(2), new Dropout2d(0.1), new AvgPool2d(3, 1, 1),
            new AdaptiveAvgPool2d((2, 2)), new Flatten(), new BatchNorm1d(8), new Linear(8, 2));
        var x = Tensor.Randn([16, 2, 6, 6], g);
        var labels = Tensor.FromArray(Enumerable.Range(0, 16).Select(i => (long)(i % 2)).ToArray(), 16);
        using (Tensor.NoGrad()) x.Narrow(1, 0, 1).Add_(labels.To(DType.Float32).Reshape(16, 1, 1, 1) * 2); // class shifts channel 0
        var opt = new Optim.Adam(model.Parameters(), 0.05);
        double first = 0, last = 0;
        for (int step = 0; step < 30; step++)
        {
            opt.ZeroGrad();
            var loss = Loss.CrossEntropy(model.Forward(x), labels);
            loss.Backward();
            opt.Step();
            if (step == 0) first = loss.ItemDouble();
            last = loss.ItemDouble();
        }
        Assert.True(last < first * 0.5, $"loss went from {first} to {last}");
    }
}

/// <summary>The pooling and batch-norm kernels of the CPU backend against the reference backend, float32 and float64, forward and backward.</summary>
public class CnnLayerOracleTests
{
    private static void Agree(Func<Tensor[], Tensor> f, double tol, params Tensor[] inputs)
    {
        var cpu = inputs.Select(t => t.To(Device.Cpu).Detach().RequiresGrad_()).ToArray();
        var reference = inputs.Select(t => t.To(Device.Reference).Detach().RequiresGrad_()).ToArray();
        var yc = f(cpu);
        var yr = f(reference);
        Assert.Equal(Device.Cpu, yc.Device);
        Assert.Equal(Device.Reference, yr.Device);
        Close(yr.ToDoubleArray(), yc, tol);
        var proj = Tensor.Randn([.. yc.Shape.AsSpan()], new Generator(7), yc.DType);
        (yc * proj.To(Device.Cpu)).Sum().Backward();
        (yr * proj.To(Device.Reference)).Sum().Backward();
        for (int i = 0; i < cpu.Length; i++) Close(reference[i].Grad!.ToDoubleArray(), cpu[i].Grad!, tol);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void PoolingAndBatchNormAgree(int seed)
    {
        var g = new Generator((ulong)seed);
        foreach (var dt in new[] { DType.Float32, DType.Float64 })
        {
            double tol = dt == DType.Float32 ? 2e-4 : 1e-10;
            int n = 1 + g.NextInt(3), c = 1 + g.NextInt(4), h = 5 + g.NextInt(12), w = 5 + g.NextInt(12);
            var x = Tensor.Randn([n, c, h, w], g, dt);
            var strided = Tensor.Randn([n, w, h, c], g, dt).Permute(0, 3, 2, 1); // a non-contiguous input
            Agree(t => Functional.MaxPool2d(t[0], 3, 2, 1), tol, x);
            Agree(t => Functional.MaxPool2d(t[0], (2, 3), (1, 2), (1, 1), (2, 1)), tol, strided);
            Agree(t => Functional.AvgPool2d(t[0], 3, 2, 1, countIncludePad: false), tol, x);
            Agree(t => Functional.AvgPool2d(t[0], 2), tol, strided);
            Agree(t => Functional.AdaptiveAvgPool2d(t[0], (3, 4)), tol, x);
            Agree(t => Functional.BatchNorm(t[0], null, null, t[1], t[2], training: true), tol, x, Tensor.Randn([c], g, dt), Tensor.Randn([c], g, dt));
            Agree(t => Functional.BatchNorm(t[0], null, null, training: true), tol, strided);
            var rm = Tensor.Randn([c], g, dt);
            var rv = Tensor.Uniform([c], 0.5, 2, g, dt);
            Agree(t => Functional.BatchNorm(t[0], rm.To(t[0].Device), rv.To(t[0].Device), t[1], t[2], training: false), tol, x,
                Tensor.Randn([c], g, dt), Tensor.Randn([c], g, dt));
        }
    }

    [Fact]
    public void BatchNormLargeChannelsSplitAcrossThreadsAgree()
    {
        // big enough that the CPU kernels split channels (and pooling planes) across threads
        var g = new Generator(9);
        var x = Tensor.Randn([8, 16, 24, 24], g) * 3 + 2;
        Agree(t => Functional.BatchNorm(t[0], null, null, t[1], t[2], training: true), 2e-4, x, Tensor.Randn([16], g), Tensor.Randn([16], g));
        Agree(t => Functional.MaxPool2d(t[0], 2), 1e-6, x);
        Agree(t => Functional.AvgPool2d(t[0], 3, 1, 1), 2e-5, x);
    }
}
