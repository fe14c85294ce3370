using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Backprop.Autograd;
using Backprop.NN;
using Backprop.Text;

namespace Backprop.Tests;

/// <summary>
/// LayerNorm, attention (causal or not, fewer queries than keys, a partial second key block) and a small GPT
/// against PyTorch (fixtures/gpt.json, written by tools/fixtures_gpt.py): outputs and every gradient, float64.
/// </summary>
public class GptFixtureTests
{
    private static readonly Lazy<JsonObject> Fixture = new(() => JsonNode.Parse(File.ReadAllText(FixturePath()))!.AsObject());

    private static string FixturePath([CallerFilePath] string source = "")
    {
        var nearBinary = Path.Combine(AppContext.BaseDirectory, "fixtures", "gpt.json");
        return File.Exists(nearBinary) ? nearBinary : Path.Combine(Path.GetDirectoryName(source)!, "fixtures", "gpt.json");
    }

    private static Tensor Load(JsonNode n)
    {
        var shape = n["shape"]!.AsArray().Select(v => (int)v!).ToArray();
        var data = n["data"]!.AsArray();
        return Tensor.FromArray(data.Select(v => (double)v!).ToArray(), shape);
    }

    private static long[] Ids(JsonNode n) => n["data"]!.AsArray().Select(v => (long)(double)v!).ToArray();

    [Theory]
    [InlineData("layer_norm")]
    [InlineData("layer_norm_3d")]
    [InlineData("attention")]
    [InlineData("attention_causal")]
    [InlineData("attention_causal_cache")]
    [InlineData("attention_causal_70")]
    public void OpMatchesPyTorch(string name)
    {
        var c = Fixture.Value[name]!;
        var xs = c["inputs"]!.AsArray().Select(n => Load(n!).RequiresGrad_()).ToArray();
        var y = name.StartsWith("layer_norm")
            ? Functional.LayerNorm(xs[0], xs[1], xs[2])
            : Functional.ScaledDotProductAttention(xs[0], xs[1], xs[2], causal: (bool)c["causal"]!);
        TestUtil.Close(Load(c["output"]!).ToDoubleArray(), y, 1e-10);
        var grads = Gradients.Compute([y], xs, [Load(c["upstream"]!)]);
        var expected = c["grads"]!.AsArray();
        for (int i = 0; i < xs.Length; i++) TestUtil.Close(Load(expected[i]!).ToDoubleArray(), grads[i]!, 1e-10);
    }

    [Fact]
    public void GptLogitsLossAndGradientsMatchPyTorch()
    {
        var c = Fixture.Value["gpt"]!;
        var cfg = c["config"]!;
        var model = new Gpt((int)cfg["vocab"]!, (int)cfg["block"]!, (int)cfg["layers"]!, (int)cfg["width"]!, (int)cfg["heads"]!, dtype: DType.Float64);
        var ps = c["params"]!.AsObject();
        var names = model.NamedParameters().Select(p => p.Name).ToList();
        Assert.Equal(ps.Select(p => p.Key).OrderBy(n => n), names.OrderBy(n => n));
        using (Tensor.NoGrad())
            foreach (var (n, p) in model.NamedParameters()) p.CopyFrom(Load(ps[n]!));
        int vocab = model.VocabSize;
        var ids = Tensor.FromArray(Ids(c["ids"]!), [2, 6]);
        var targets = Tensor.FromArray(Ids(c["targets"]!), [12]);
        var logits = model.Logits(ids);
        TestUtil.Close(Load(c["logits"]!).ToDoubleArray(), logits, 1e-10);
        var loss = Loss.CrossEntropy(logits.Reshape(-1, vocab), targets);
        TestUtil.Close((double)c["loss"]!, loss.ToDoubleArray()[0], 1e-10);
        loss.Backward();
        foreach (var (n, p) in model.NamedParameters())
            TestUtil.Close(Load(c["grads"]![n]!).ToDoubleArray(), p.Grad!, 1e-9);
    }
}
