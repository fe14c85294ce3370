using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Backprop.Backends;
using Backprop.NN;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>
/// Conv2d, Conv1d and ConvTranspose2d: gradient and second-derivative checks in float64 over a
/// covering subset of stride {1, 2} × padding {0, 1, same} × dilation {1, 2} × groups {1, 2, C};
/// forward values and gradients against PyTorch (fixtures/conv.json, tools/fixtures_conv.py);
/// argument errors; the modules' parameters, initialization and printing.
/// </summary>
public class ConvTests
{
    // (N, C, H, W, O, KH, KW, stride, padding, dilation, groups): every value of every axis appears,
    // with odd sizes and non-square kernels.
    public static IEnumerable<object[]> Geometries =>
    [
        [2, 2, 5, 4, 3, 3, 3, 1, "0", 1, 1],
        [2, 4, 7, 5, 2, 3, 2, 2, "1", 1, 2],
        [1, 2, 5, 6, 3, 2, 3, 1, "same", 2, 1],
        [2, 3, 7, 7, 3, 3, 3, 2, "0", 2, 3],
        [1, 4, 5, 5, 4, 3, 3, 1, "1", 2, 2],
        [2, 3, 4, 5, 6, 3, 3, 1, "same", 1, 3],
        [1, 2, 7, 6, 3, 3, 2, 2, "1", 2, 1],
        [2, 3, 3, 4, 2, 1, 1, 1, "0", 1, 1],
    ];

    private static ConvPadding Pad(string p) => p == "same" ? ConvPadding.Same : int.Parse(p);

    [Theory, MemberData(nameof(Geometries))]
    public void Conv2dGradientsAndSecondDerivatives(int n, int c, int h, int w, int o, int kh, int kw, int stride, string padding, int dilation, int groups)
    {
        var g = new Generator((ulong)(n * 1000 + c * 100 + h * 10 + w));
        var x = R(g, n, c, h, w);
        var wt = R(g, o, c / groups, kh, kw);
        var b = R(g, o);
        Check(t => Functional.Conv2d(t[0], t[1], t[2], stride, Pad(padding), dilation, groups), x, wt, b);
    }

    [Fact]
    public void Conv1dAndTransposedGradientsAndSecondDerivatives()
    {
        var g = new Generator(5);
        Check(t => Functional.Conv1d(t[0], t[1], t[2], stride: 2, padding: 1, groups: 2), R(g, 2, 4, 7), R(g, 2, 2, 3), R(g, 2));
        Check(t => Functional.Conv1d(t[0], t[1], null, padding: "same", dilation: 2), R(g, 1, 3, 6), R(g, 2, 3, 4));
        Check(t => Functional.ConvTranspose2d(t[0], t[1], t[2], stride: 2, padding: 1, outputPadding: 1, groups: 2),
            R(g, 2, 4, 3, 2), R(g, 4, 1, 3, 3), R(g, 2));
        Check(t => Functional.ConvTranspose2d(t[0], t[1], null, stride: (1, 2), padding: (0, 1), dilation: 2),
            R(g, 1, 2, 3, 3), R(g, 2, 3, 2, 3));
    }

    [Fact]
    public void UnbatchedInputsMatchABatchOfOne()
    {
        var g = new Generator(3);
        var x = R(g, 2, 5, 6);
        var w = R(g, 3, 2, 3, 3);
        Close(Functional.Conv2d(x.Unsqueeze(0), w, padding: 1).Squeeze(0).ToDoubleArray(), Functional.Conv2d(x, w, padding: 1), 1e-12);
        var x1 = R(g, 2, 9);
        var w1 = R(g, 4, 2, 3);
        Close(Functional.Conv1d(x1.Unsqueeze(0), w1).Squeeze(0).ToDoubleArray(), Functional.Conv1d(x1, w1), 1e-12);
    }

    // ------------------------------------------------------------------ PyTorch fixtures

    private static readonly Lazy<JsonObject> Fixture = new(() => JsonNode.Parse(File.ReadAllText(FixturePath()))!.AsObject());

    private static string FixturePath([CallerFilePath] string source = "")
    {
        var nearBinary = Path.Combine(AppContext.BaseDirectory, "fixtures", "conv.json");
        return File.Exists(nearBinary) ? nearBinary : Path.Combine(Path.GetDirectoryName(source)!, "fixtures", "conv.json");
    }

    public static TheoryData<string> CaseNames()
    {
        var d = new TheoryData<string>();
        foreach (var c in Fixture.Value["cases"]!.AsArray()) d.Add((string)c!["name"]!);
        return d;
    }

    private static Size2d Pair(JsonNode? n) => n is JsonArray a ? ((int)a[0]!, (int)a[1]!) : (Size2d)(int)n!;

    private static double[] Values(JsonNode n) => n.AsArray().Select(v => (double)v!).ToArray();

    private static Tensor Input(JsonNode? spec, DType dtype) => spec == null ? null! :
        Tensor.FromArray(Values(spec["values"]!), spec["shape"]!.AsArray().Select(v => (int)v!).ToArray()).To(dtype).RequiresGrad_();

    [Theory, MemberData(nameof(CaseNames))]
    public void MatchesPyTorch(string name)
    {
        var c = Fixture.Value["cases"]!.AsArray().Single(o => (string)o!["name"]! == name)!.AsObject();
        var dtype = (string)c["dtype"]! == "float32" ? DType.Float32 : DType.Float64;
        double tol = dtype == DType.Float32 ? 2e-4 : 1e-10;
        var x = Input(c["x"], dtype);
        var w = Input(c["w"], dtype);
        var b = c["b"] == null ? null : Input(c["b"], dtype);
        var a = c["args"]!.AsObject();
        int groups = (int)a["groups"]!;
        Tensor y = (string)c["op"]! switch
        {
            "conv2d" => Functional.Conv2d(x, w, b, Pair(a["stride"]), a["padding"] is JsonValue v && v.TryGetValue(out string? s) ? s : Pair(a["padding"]),
                Pair(a["dilation"]), groups),
            "conv1d" => Functional.Conv1d(x, w, b, (int)a["stride"]!, a["padding"] is JsonValue v1 && v1.TryGetValue(out string? s1) ? s1 : (int)a["padding"]!,
                (int)a["dilation"]!, groups),
            _ => Functional.ConvTranspose2d(x, w, b, Pair(a["stride"]), Pair(a["padding"]), Pair(a["output_padding"]), groups, Pair(a["dilation"])),
        };
        Assert.Equal(c["y"]!["shape"]!.AsArray().Select(v => (int)v!).ToArray(), y.Shape.ToArray());
        Close(Values(c["y"]!["values"]!), y, tol);
        var gy = Tensor.FromArray(Values(c["gy"]!), y.Shape.ToArray()).To(dtype);
        y.Backward(gy);
        Close(Values(c["x"]!["grad"]!), x.Grad!, tol);
        Close(Values(c["w"]!["grad"]!), w.Grad!, tol);
        if (b != null) Close(Values(c["b"]!["grad"]!), b.Grad!, tol);
    }

    // ------------------------------------------------------------------ errors

    [Fact]
    public void BadShapesGiveOneLineErrorsNamingTheLayerAndSizes()
    {
        var x = Tensor.Zeros(2, 3, 5, 5);
        string Msg(Action a) => Assert.ThrowsAny<ArgumentException>(a).Message;

        Assert.Equal("Conv2d: expected a 4-D input [N, C, H, W] (or 3-D [C, H, W]), got [5, 5].",
            Msg(() => Functional.Conv2d(Tensor.Zeros(5, 5), Tensor.Zeros(4, 3, 3, 3))));
        Assert.Equal("Conv2d: input [2, 3, 5, 5] has 3 channels, but weight [4, 2, 3, 3] with groups=1 expects 2.",
            Msg(() => Functional.Conv2d(x, Tensor.Zeros(4, 2, 3, 3))));
        Assert.Equal("Conv2d: in_channels 3 (input [2, 3, 5, 5]) is not divisible by groups 2.",
            Msg(() => Functional.Conv2d(x, Tensor.Zeros(4, 1, 3, 3), groups: 2)));
        Assert.Equal("Conv2d: out_channels 3 (weight [3, 1, 3, 3]) is not divisible by groups 2.",
            Msg(() => Functional.Conv2d(Tensor.Zeros(1, 2, 5, 5), Tensor.Zeros(3, 1, 3, 3), groups: 2)));
        Assert.Equal("Conv2d: kernel 9x9 (dilation 1x1: 9x9 effective) is larger than the padded input 7x7 (input [2, 3, 5, 5], padding 1).",
            Msg(() => Functional.Conv2d(x, Tensor.Zeros(4, 3, 9, 9), padding: 1)));
        Assert.Equal("Conv2d: kernel 3x3 (dilation 3x3: 7x7 effective) is larger than the padded input 5x5 (input [2, 3, 5, 5], padding 0).",
            Msg(() => Functional.Conv2d(x, Tensor.Zeros(4, 3, 3, 3), dilation: 3)));
        Assert.Equal("Conv2d: padding='same' needs stride 1, got stride 2.",
            Msg(() => Functional.Conv2d(x, Tensor.Zeros(4, 3, 3, 3), stride: 2, padding: "same")));
        Assert.Equal("Conv2d: bias must have shape [4], got [3].",
            Msg(() => Functional.Conv2d(x, Tensor.Zeros(4, 3, 3, 3), Tensor.Zeros(3))));
        Assert.Equal("Conv1d: expected a 3-D input [N, C, L] (or 2-D [C, L]), got [2, 3, 5, 5].",
            Msg(() => Functional.Conv1d(x, Tensor.Zeros(4, 3, 3))));
        Assert.Equal("ConvTranspose2d: input [2, 3, 5, 5] has 3 channels, but weight [4, 2, 3, 3] expects 4 (weight is [in_channels, out_channels/groups, KH, KW]).",
            Msg(() => Functional.ConvTranspose2d(x, Tensor.Zeros(4, 2, 3, 3))));
        Assert.Equal("ConvTranspose2d: output_padding 2 must be smaller than the stride 2 or the dilation 1.",
            Msg(() => Functional.ConvTranspose2d(x, Tensor.Zeros(3, 2, 3, 3), stride: 2, outputPadding: 2)));
        Assert.Equal("Conv2d: in_channels 3 is not divisible by groups 2.", Msg(() => new Conv2d(3, 4, 3, groups: 2)));
        Assert.Equal("Conv: padding must be a size, \"same\" or \"valid\", got \"full\".", Msg(() => new Conv2d(3, 4, 3, padding: "full")));
        foreach (var msg in new[] { Msg(() => new Conv2d(3, 4, 3).Forward(Tensor.Zeros(2, 4, 5, 5))) })
            Assert.DoesNotContain('\n', msg);
    }

    // ------------------------------------------------------------------ modules

    [Fact]
    public void ModulesHavePyTorchParameterNamesShapesAndInitBounds()
    {
        var conv = new Conv2d(4, 6, (3, 5), stride: 2, padding: 1, groups: 2, generator: new Generator(1));
        var sd = conv.StateDict();
        Assert.Equal(new[] { 6, 2, 3, 5 }, sd["weight"].Shape.ToArray());
        Assert.Equal(new[] { 6 }, sd["bias"].Shape.ToArray());
        double bound = 1 / Math.Sqrt(2 * 3 * 5);
        Assert.All(conv.Weight.ToDoubleArray(), v => Assert.InRange(Math.Abs(v), 0, bound));
        Assert.All(conv.Bias!.ToDoubleArray(), v => Assert.InRange(Math.Abs(v), 0, bound));
        Assert.True(conv.Weight.ToDoubleArray().Max(Math.Abs) > 0.8 * bound); // spread over the range, not a smaller one
        Assert.Equal(new[] { 2, 6, 4, 2 }, conv.Forward(Tensor.Zeros(2, 4, 7, 6)).Shape.ToArray());
        Assert.Equal("Conv2d(4, 6, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), groups=2)", conv.ToString());

        var c1 = new Conv1d(3, 5, 4, padding: "same", bias: false);
        Assert.Equal(new[] { 5, 3, 4 }, c1.Weight.Shape.ToArray());
        Assert.Null(c1.Bias);
        Assert.Equal(new[] { 2, 5, 9 }, c1.Forward(Tensor.Zeros(2, 3, 9)).Shape.ToArray());

        var t = new ConvTranspose2d(4, 6, 3, stride: 2, padding: 1, outputPadding: 1, groups: 2);
        Assert.Equal(new[] { 4, 3, 3, 3 }, t.Weight.Shape.ToArray());
        Assert.Equal(new[] { 6 }, t.Bias!.Shape.ToArray());
        Assert.Equal(new[] { 1, 6, 10, 8 }, t.Forward(Tensor.Zeros(1, 4, 5, 4)).Shape.ToArray());
        double tb = 1 / Math.Sqrt(3 * 9); // PyTorch's fan-in of the transposed weight: size(1)·KH·KW
        Assert.All(t.Weight.ToDoubleArray(), v => Assert.InRange(Math.Abs(v), 0, tb));
    }

    /// <summary>The example of docs/nn.md, "Convolutions", line for line.</summary>
    [Fact]
    public void NnGuideExample()
    {
        var g = new Generator(0);
        var net = new Sequential(
            new Conv2d(1, 32, 3, padding: "same", generator: g), new Relu(),
            new Conv2d(32, 64, 3, stride: 2, padding: 1, generator: g), new Relu(),   // 28x28 -> 14x14
            new Conv2d(64, 64, (3, 1), padding: (1, 0), groups: 64, generator: g),   // depthwise, non-square
            new ConvTranspose2d(64, 16, 2, stride: 2, generator: g));                 // 14x14 -> 28x28
        var y = net.Forward(Tensor.Randn([2, 1, 28, 28], g));                        // [2, 16, 28, 28]
        Assert.Equal(new[] { 2, 16, 28, 28 }, y.Shape.ToArray());
        Assert.Equal(new[] { "0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "5.weight", "5.bias" }, net.StateDict().Keys.ToArray());
    }

    [Fact]
    public void TrainingStepReducesTheLossAndAccumulatesIntoGrad()
    {
        var g = new Generator(11);
        var conv = new Conv2d(2, 3, 3, padding: 1, generator: g);
        var x = Tensor.Randn([4, 2, 6, 6], g);
        var target = Tensor.Randn([4, 3, 6, 6], g);
        var opt = new Optim.Sgd(conv.Parameters(), lr: 0.05);
        double first = 0, last = 0;
        for (int i = 0; i < 20; i++)
        {
            opt.ZeroGrad();
            var loss = (conv.Forward(x) - target).Pow(2).Mean();
            loss.Backward();
            opt.Step();
            if (i == 0) first = loss.Item();
            last = loss.Item();
        }
        Assert.True(last < 0.8 * first, $"loss {first} -> {last}");
    }
}

/// <summary>The CPU convolution kernels (im2col + GEMM, threads over the batch) against the reference backend's definitions.</summary>
// In the non-parallel "Threads" collection: the allocation test counts every thread's allocations
// (the convolution's workers too), which other tests running beside it would add to.
[Collection("Threads")]
public class ConvOracleTests
{
    public static IEnumerable<object[]> Seeds => Enumerable.Range(1, 6).Select(s => new object[] { s });

    [Theory, MemberData(nameof(Seeds))]
    public void CpuAgreesWithReference(int seed)
    {
        var g = new Generator((ulong)seed);
        foreach (var dt in new[] { DType.Float32, DType.Float64 })
        {
            double tol = dt == DType.Float32 ? 2e-4 : 1e-10;
            int groups = 1 + g.NextInt(3);
            int c = groups * (1 + g.NextInt(3)), o = groups * (1 + g.NextInt(3));
            int kh = 1 + g.NextInt(3), kw = 1 + g.NextInt(3), s = 1 + g.NextInt(2), d = 1 + g.NextInt(2), p = g.NextInt(2);
            int h = d * (kh - 1) + 1 + g.NextInt(5), w = d * (kw - 1) + 1 + g.NextInt(5), n = 1 + g.NextInt(3);
            var x = Tensor.Randn([n, c, h, w], g, dt);
            var wt = Tensor.Randn([o, c / groups, kh, kw], g, dt);
            var b = Tensor.Randn([o], g, dt);
            BackendOracleTests.Agree(t => Functional.Conv2d(t[0], t[1], t[2], s, p, d, groups), tol, x, wt, b);
            BackendOracleTests.Agree(t => Functional.Conv2d(t[0], t[1], null, 1, "same", d, groups), tol, x, wt);
            // a transposed (non-contiguous) input
            BackendOracleTests.Agree(t => Functional.Conv2d(t[0].Transpose(2, 3), t[1], t[2], s, p, d, groups), tol, x.Transpose(2, 3).Contiguous(), wt, b);
            var tw = Tensor.Randn([c, o / groups, kh, kw], g, dt);
            BackendOracleTests.Agree(t => Functional.ConvTranspose2d(t[0], t[1], t[2], s, 0, s > 1 ? 1 : 0, groups, d), tol,
                x, tw, Tensor.Randn([o], g, dt));
        }
    }

    [Fact]
    public void ThreadsSplittingTheBatchGiveTheSameResultAsOne()
    {
        // 3.7M multiply-adds: two ranges of samples on two threads, the weight gradient summed per range
        var g = new Generator(4);
        var x = Tensor.Randn([8, 8, 21, 19], g).RequiresGrad_();
        var w = Tensor.Randn([32, 4, 3, 3], g).RequiresGrad_();
        var b = Tensor.Randn([32], g).RequiresGrad_();
        (double[] Y, double[] Dx, double[] Dw, double[] Db) Run(int threads, DType dtype)
        {
            using var _ = Threads.Use(threads);
            var (xi, wi, bi) = (x.Detach().To(dtype).RequiresGrad_(), w.Detach().To(dtype).RequiresGrad_(), b.Detach().To(dtype).RequiresGrad_());
            var y = Functional.Conv2d(xi, wi, bi, padding: 1, groups: 2);
            (y * y).Sum().Backward();
            return (y.ToDoubleArray(), xi.Grad!.ToDoubleArray(), wi.Grad!.ToDoubleArray(), bi.Grad!.ToDoubleArray());
        }
        var exact = Run(1, DType.Float64); // the float64 kernels agree with the reference backend (CpuAgreesWithReference)
        foreach (var threads in new[] { 1, 2 })
        {
            var r = Run(threads, DType.Float32);
            Close(exact.Y, Tensor.FromArray(r.Y), 1e-4);
            Close(exact.Dx, Tensor.FromArray(r.Dx), 1e-3);
            Close(exact.Dw, Tensor.FromArray(r.Dw), 1e-3);
            Close(exact.Db, Tensor.FromArray(r.Db), 1e-3);
        }
        var two64 = Run(2, DType.Float64);
        Close(exact.Dw, Tensor.FromArray(two64.Dw), 1e-10);
        Close(exact.Dx, Tensor.FromArray(two64.Dx), 1e-10);
    }

    [Fact]
    public void AWarmTrainingStepAllocatesOnlyAFewKilobytes()
    {
        var g = new Generator(9);
        var model = new Sequential(new Conv2d(2, 8, 3, padding: 1, generator: g), new Relu(), new Conv2d(8, 4, 3, stride: 2, groups: 2, generator: g));
        var opt = new Optim.Sgd(model.Parameters(), lr: 0.01, momentum: 0.9);
        var x = Tensor.Randn([6, 2, 11, 9], g);
        using var threads = Threads.Use(2);
        void Step()
        {
            using var scope = Tensor.Scope();
            opt.ZeroGrad();
            model.Forward(x).Pow(2).Mean().Backward();
            opt.Step();
        }
        for (int i = 0; i < 5; i++) Step();
        long least = long.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            Step();
            least = Math.Min(least, GC.GetTotalAllocatedBytes(precise: true) - before);
        }
        // the graph's nodes and tensor objects; every buffer (outputs, unfold scratch, GEMM packing) is reused
        Assert.True(least < 8192, $"{least} bytes per warm step");
    }

    [Fact]
    public void WeightGradientAccumulatesAcrossBackwardPasses()
    {
        var g = new Generator(8);
        var x = Tensor.Randn([3, 2, 6, 5], g);
        var w = Tensor.Randn([4, 2, 3, 3], g).RequiresGrad_();
        Functional.Conv2d(x, w, padding: 1).Sum().Backward();
        var once = w.Grad!.ToDoubleArray();
        Functional.Conv2d(x, w, padding: 1).Sum().Backward();
        Close(once.Select(v => 2 * v).ToArray(), w.Grad!, 1e-4);
    }
}
