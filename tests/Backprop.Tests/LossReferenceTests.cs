using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Backprop.NN;

namespace Backprop.Tests;

/// <summary>
/// L1, SmoothL1, Huber, KL divergence, BCE with logits (posWeight, weight) and NllLoss against PyTorch
/// (fixtures/losses_reference.json, written by tools/loss_schedule_fixtures.py): values and the gradient
/// of loss.Sum() for every input; then gradient and second-derivative checks of each loss.
/// </summary>
public class LossReferenceTests
{
    private static readonly Lazy<JsonObject> Fixture = new(() => JsonNode.Parse(File.ReadAllText(FixturePath()))!.AsObject());

    private static string FixturePath([CallerFilePath] string source = "")
    {
        var nearBinary = Path.Combine(AppContext.BaseDirectory, "fixtures", "losses_reference.json");
        return File.Exists(nearBinary) ? nearBinary : Path.Combine(Path.GetDirectoryName(source)!, "fixtures", "losses_reference.json");
    }

    public static TheoryData<string> CaseNames()
    {
        var d = new TheoryData<string>();
        foreach (var c in Fixture.Value["cases"]!.AsArray()) d.Add((string)c!["name"]!);
        return d;
    }

    private static Reduction ReductionOf(string r) => r switch
    {
        "mean" => Reduction.Mean,
        "sum" => Reduction.Sum,
        "none" => Reduction.None,
        "batchmean" => Reduction.BatchMean,
        _ => throw new ArgumentException(r),
    };

    /// <summary>The Backprop call for a fixture case, by the case's name.</summary>
    private static Tensor Apply(JsonObject c, IReadOnlyDictionary<string, Tensor> inp)
    {
        string name = (string)c["name"]!;
        var red = ReductionOf((string)c["reduction"]!);
        var x = inp["x"];
        var t = inp["t"];
        if (name.StartsWith("smooth_l1_", StringComparison.Ordinal)) return Loss.SmoothL1Loss(x, t, red, beta: (double)c["beta"]!);
        if (name.StartsWith("l1_", StringComparison.Ordinal)) return Loss.L1Loss(x, t, red);
        if (name.StartsWith("huber_", StringComparison.Ordinal)) return Loss.HuberLoss(x, t, red, delta: (double)c["delta"]!);
        if (name.StartsWith("kl_div_", StringComparison.Ordinal)) return Loss.KlDiv(x, t, red, logTarget: (bool)c["log_target"]!);
        if (name.StartsWith("bce_logits_", StringComparison.Ordinal))
            return Loss.BinaryCrossEntropyWithLogits(x, t, red, posWeight: inp.GetValueOrDefault("p"), weight: inp.GetValueOrDefault("w"));
        if (name.StartsWith("nll_", StringComparison.Ordinal)) return Loss.NllLoss(x, t, red, ignoreIndex: (long)c["ignore_index"]!);
        throw new ArgumentException($"no Backprop loss for fixture case {name}");
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void MatchesPyTorch(string name)
    {
        var c = Fixture.Value["cases"]!.AsArray().Single(o => (string)o!["name"]! == name)!.AsObject();
        var grads = c["grads"]!.AsObject();
        var inp = new Dictionary<string, Tensor>();
        foreach (var (k, v) in c["inputs"]!.AsObject())
        {
            var data = v!["data"]!.AsArray().Select(e => (double)e!).ToArray();
            var shape = v["shape"]!.AsArray().Select(e => (int)e!).ToArray();
            var tensor = Tensor.FromArray(data, shape);
            if (grads.ContainsKey(k)) tensor.RequiresGrad = true;
            inp[k] = tensor;
        }
        var y = Apply(c, inp);
        Assert.Equal(c["shape"]!.AsArray().Select(e => (int)e!).ToArray(), y.Shape.ToArray());
        TestUtil.Close(c["value"]!.AsArray().Select(e => (double)e!).ToArray(), y, 1e-10);
        y.Sum().Backward();
        foreach (var (k, g) in grads)
            TestUtil.Close(g!.AsArray().Select(e => (double)e!).ToArray(), inp[k].Grad!, 1e-10);
    }

    // ------------------------------------------------------------------ gradient and second-derivative checks

    [Theory]
    [InlineData(Reduction.Mean)]
    [InlineData(Reduction.Sum)]
    [InlineData(Reduction.None)]
    public void L1SmoothL1AndHuberPassGradientChecks(Reduction reduction)
    {
        var g = new Generator(11);
        var x = TestUtil.R(g, 3, 4) * 2;
        var t = TestUtil.R(g, 3, 4);
        TestUtil.Check(v => Loss.L1Loss(v[0], v[1], reduction), x, t);
        TestUtil.Check(v => Loss.SmoothL1Loss(v[0], v[1], reduction, beta: 0.8), x, t);
        TestUtil.Check(v => Loss.HuberLoss(v[0], v[1], reduction, delta: 1.3), x, t);
    }

    [Theory]
    [InlineData(Reduction.Mean, false)]
    [InlineData(Reduction.BatchMean, false)]
    [InlineData(Reduction.None, true)]
    [InlineData(Reduction.Sum, true)]
    public void KlDivPassesGradientChecks(Reduction reduction, bool logTarget)
    {
        var g = new Generator(12);
        var input = TestUtil.R(g, 3, 5).LogSoftmax(1).Detach();
        var target = logTarget ? TestUtil.R(g, 3, 5).LogSoftmax(1).Detach() : TestUtil.R(g, 3, 5).Softmax(1).Detach();
        TestUtil.Check(v => Loss.KlDiv(v[0], v[1], reduction, logTarget), input, target);
    }

    [Fact]
    public void BceWithLogitsPassesGradientChecks()
    {
        var g = new Generator(13);
        var x = TestUtil.R(g, 4, 3) * 2;
        var t = Tensor.Uniform([4, 3], 0, 1, g, DType.Float64);
        var pw = TestUtil.Pos(g, 3);
        var w = TestUtil.Pos(g, 3);
        TestUtil.Check(v => Loss.BinaryCrossEntropyWithLogits(v[0], v[1]), x, t);
        TestUtil.Check(v => Loss.BinaryCrossEntropyWithLogits(v[0], v[1], Reduction.Sum, posWeight: v[2]), x, t, pw);
        TestUtil.Check(v => Loss.BinaryCrossEntropyWithLogits(v[0], v[1], Reduction.None, posWeight: v[2], weight: v[3]), x, t, pw, w);
    }

    [Fact]
    public void NllLossPassesGradientChecks()
    {
        var g = new Generator(14);
        var lp = TestUtil.R(g, 5, 4).LogSoftmax(1).Detach();
        var labels = Tensor.FromArray([2.0, 0, 3, 1, 3], 5);
        TestUtil.Check(v => Loss.NllLoss(v[0], labels), lp);
        TestUtil.Check(v => Loss.NllLoss(v[0], labels, Reduction.None, ignoreIndex: 3), lp);
        TestUtil.Check(v => Loss.NllLoss(v[0], Tensor.Scalar(1, DType.Float64)), lp.Select(0, 0).Contiguous());
    }

    // ------------------------------------------------------------------ argument errors

    [Fact]
    public void NllLossAcceptsWhatCrossEntropyAccepts()
    {
        var logits = Tensor.FromArray(new double[,] { { 0.1, 1.2, -0.3 }, { 2.0, 0.5, 0.1 } });
        var floatLabels = Tensor.FromArray([1.0, 0.0], 2);
        var fromCe = Loss.CrossEntropy(logits, floatLabels).ItemDouble();
        Assert.Equal(fromCe, Loss.NllLoss(logits.LogSoftmax(1), floatLabels).ItemDouble(), 12);
        Assert.Equal(fromCe, Loss.NllLoss(logits.LogSoftmax(1), Tensor.FromArray([1L, 0L], 2)).ItemDouble(), 12);
        var ex = Assert.Throws<ArgumentException>(() => Loss.NllLoss(logits.LogSoftmax(1), Tensor.FromArray([1.5, 0.0], 2)));
        Assert.Contains("NllLoss: target 1.5 at position 0 is not a class index", ex.Message);
        var single = Loss.NllLoss(logits.Select(0, 0).LogSoftmax(0), Tensor.Scalar(2), Reduction.None);
        Assert.Equal(0, single.Rank);
        Assert.Equal(Loss.CrossEntropy(logits.Select(0, 0), Tensor.Scalar(2, DType.Int64)).ItemDouble(), single.ItemDouble(), 12);
    }

    [Fact]
    public void BatchMeanIsForKlDivOnly()
    {
        var a = Tensor.FromArray([0.5, 1.0], 2);
        Assert.Contains("BatchMean is for KlDiv only", Assert.Throws<ArgumentException>(() => Loss.L1Loss(a, a, Reduction.BatchMean)).Message);
        Assert.Contains("BatchMean is for KlDiv only", Assert.Throws<ArgumentException>(() => Loss.NllLoss(a.Log().Unsqueeze(0), Tensor.FromArray([1L], 1), Reduction.BatchMean)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Loss.HuberLoss(a, a, delta: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Loss.SmoothL1Loss(a, a, beta: -1));
        Assert.Contains("posWeight [3] does not broadcast", Assert.Throws<ShapeException>(() =>
            Loss.BinaryCrossEntropyWithLogits(a, a, posWeight: Tensor.FromArray([1.0, 2, 3], 3))).Message);
    }
}
