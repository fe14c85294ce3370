using Backprop.NN;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>Module hooks, modules with several inputs and outputs, ModuleList and ModuleDict.</summary>
public class ModuleHookTests
{
    /// <summary>Scaled dot-product attention over (q, k, v, mask): a module with four inputs.</summary>
    private sealed class Attention : Module<(Tensor Q, Tensor K, Tensor V, Tensor? Mask), (Tensor Output, Tensor Weights)>
    {
        public Linear Proj { get; }

        public Attention(int dim, Generator g) => Proj = new Linear(dim, dim, dtype: DType.Float64, generator: g);

        public override (Tensor Output, Tensor Weights) Forward((Tensor Q, Tensor K, Tensor V, Tensor? Mask) input)
        {
            var scores = input.Q.MatMul(input.K.Transpose(-1, -2)) / Math.Sqrt(input.Q.Size(-1));
            if (input.Mask != null) scores = Tensor.Where(input.Mask, scores, scores.Const(-1e9));
            var w = scores.Softmax(-1);
            return (Proj.Forward(w.MatMul(input.V)), w);
        }
    }

    private sealed class TwoHeads : Module
    {
        public ModuleDict Heads { get; } = new();
        public ModuleList Blocks { get; }

        public TwoHeads(Generator g)
        {
            Blocks = new ModuleList(new Linear(3, 4, generator: g), new Tanh());
            Heads.Add("classify", new Linear(4, 2, generator: g));
            Heads.Add("score", new Linear(4, 1, generator: g));
        }
    }

    [Fact]
    public void ForwardAndBackwardHooksSeeEveryLayerOfASequential()
    {
        var g = new Generator(1);
        var model = new Sequential(new Linear(2, 3, generator: g), new Relu(), new Linear(3, 1, generator: g));
        var x = Tensor.Randn([4, 2], g);
        var plain = model.Forward(x).ToDoubleArray();
        var activations = new List<(string, int[])>();
        var grads = new List<(string, double[])>();
        var handles = new List<IDisposable>();
        foreach (var (name, m) in model.NamedChildren())
        {
            handles.Add(m.RegisterForwardHook((mod, input, output) => activations.Add((name, output.Shape.ToArray()))));
            handles.Add(m.RegisterBackwardHook((mod, gradOut) => grads.Add((name, gradOut.ToDoubleArray()))));
        }
        var y = model.Forward(x);
        Close(plain, y, 0); // the hooked (unfused) path computes the same numbers
        Assert.Equal(["0", "1", "2"], activations.Select(a => a.Item1));
        Assert.Equal([4, 3], activations[1].Item2);
        y.Sum().Backward();
        Assert.Equal(["2", "1", "0"], grads.Select(a => a.Item1)); // backward order
        Assert.All(grads[0].Item2, v => Assert.Equal(1.0, v)); // dL/dy of a sum
        foreach (var h in handles) h.Dispose();
        activations.Clear();
        model.Forward(x);
        Assert.Empty(activations);
    }

    [Fact]
    public void ForwardHooksMayReplaceInputAndOutput()
    {
        var lin = new Linear(2, 2, dtype: DType.Float64, generator: new Generator(2));
        using var pre = lin.RegisterForwardPreHook((m, x) => x * 0);
        using var post = lin.RegisterForwardHook((Module m, Tensor x, Tensor y) => y + 1);
        var outp = lin.Call(Tensor.Randn([1, 2], new Generator(3), DType.Float64));
        Close(lin.Bias!.ToDoubleArray().Select(b => b + 1).ToArray(), outp.Reshape(-1), 1e-12);
    }

    [Fact]
    public void AModuleWithSeveralInputsAndOutputsTrainsAndSaves()
    {
        var g = new Generator(4);
        var att = new Attention(3, g);
        var q = R(g, 2, 3);
        var k = R(g, 4, 3);
        var v = R(g, 4, 3);
        var mask = Tensor.FromArray([1.0, 1, 0, 1, 1, 0, 1, 1]).Reshape(2, 4);
        var (o, w) = att.Call((q, k, v, mask));
        Assert.Equal([2, 3], o.Shape.ToArray());
        Close([1.0, 1.0], w.Sum(-1), 1e-12);
        Assert.Equal(0.0, w.ToDoubleArray()[2]); // masked out
        Assert.Equal(["proj.weight", "proj.bias"], att.NamedParameters().Select(p => p.Name));
        // its gradients check out, including the second derivative
        Check(t =>
        {
            var a = new Attention(3, new Generator(4));
            return a.Forward((t[0], t[1], t[2], mask)).Output;
        }, q, k, v);
        // typed forward hooks observe both outputs
        Tensor? seen = null;
        using (att.RegisterForwardHook((m, input, output) => seen = output.Weights)) att.Call((q, k, v, null));
        Assert.NotNull(seen);
        var sd = att.StateDict();
        var other = new Attention(3, new Generator(99));
        other.LoadStateDict(sd);
        Close(o.ToDoubleArray(), other.Forward((q, k, v, mask)).Output, 1e-12);
    }

    [Fact]
    public void ModuleListAndModuleDictNameTheirChildren()
    {
        var m = new TwoHeads(new Generator(5));
        Assert.Equal(["heads.classify.weight", "heads.classify.bias", "heads.score.weight", "heads.score.bias", "blocks.0.weight", "blocks.0.bias"],
            m.NamedParameters().Select(p => p.Name));
        Assert.Equal(["classify", "score"], m.Heads.Keys);
        Assert.IsType<Linear>(m.Heads["score"]);
        Assert.Contains("no module named 'nope' (have: classify, score)", Assert.Throws<KeyNotFoundException>(() => m.Heads["nope"]).Message);
        Assert.Contains("already there", Assert.Throws<ArgumentException>(() => m.Heads.Add("score", new Tanh())).Message);
        Assert.IsType<Tanh>(m.Blocks[-1]);
        Assert.Equal(2, m.Blocks.Count());
        m.Blocks.Extend([new Linear(4, 4, generator: new Generator(6))]);
        Assert.Contains("blocks.2.weight", m.NamedParameters().Select(p => p.Name));
        var copy = new TwoHeads(new Generator(7));
        copy.Blocks.Add(new Linear(4, 4));
        copy.LoadStateDict(m.StateDict());
        Close(m.Heads["score"].Forward(Tensor.Ones(1, 4)).ToDoubleArray(), copy.Heads["score"].Forward(Tensor.Ones(1, 4)), 0);
    }
}
