using Backprop.Autograd;
using Backprop.NN;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

public class NNTests
{
    private sealed class TwoLayer : Module
    {
        public Linear Fc1 { get; } = new(3, 4, generator: new Generator(1));
        private readonly Linear _fc2 = new(4, 2, generator: new Generator(2));
        public Parameter Scale { get; } = new(Tensor.Ones(2));

        public override Tensor Forward(Tensor input) => _fc2.Forward(Fc1.Forward(input).Tanh()) * Scale;
    }

    private sealed class Holder : Module
    {
        public Sequential Layers { get; } = new(new Linear(2, 3), new Relu(), new Linear(3, 1));
        public Module[] Heads { get; } = [new Linear(1, 1), new Linear(1, 2)];
    }

    [Fact]
    public void ParametersAreFoundWithStableDottedNames()
    {
        var m = new TwoLayer();
        var names = m.NamedParameters().Select(p => p.Name).ToArray();
        // as in PyTorch: a module's own parameters first, then its children's
        Assert.Equal(new[] { "scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias" }, names);
        var h = new Holder();
        Assert.Equal(new[] { "layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias", "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias" },
            h.NamedParameters().Select(p => p.Name).ToArray());
        Assert.Equal(3 * 4 + 4 + 4 * 2 + 2 + 2, m.NumParameters());
        Assert.Contains("Linear(in=3, out=4, bias=True)", m.ToString());
    }

    [Fact]
    public void SharedParametersAreListedOnce()
    {
        var shared = new Linear(2, 2);
        var seq = new Sequential(shared, new Tanh(), shared);
        Assert.Equal(2, seq.Parameters().Count());
        var x = Tensor.Randn([5, 2], new Generator(3));
        seq.Forward(x).Sum().Backward();
        // gradient of a weight used twice is the sum of both uses
        var w = shared.Weight;
        var reference = GradCheck.Run(t =>
        {
            var l = new Linear(2, 2, dtype: DType.Float64);
            using (Tensor.NoGrad()) { l.Weight.CopyFrom(t[0]); l.Bias!.CopyFrom(t[1]); }
            return Functional.Linear(Functional.Linear(t[2], t[0], t[1]).Tanh(), t[0], t[1]).Sum();
        }, [w.Detach(), shared.Bias!.Detach(), x]);
        Assert.True(reference.Passed, reference.ToString());
    }

    [Fact]
    public void LinearMatchesTheClosedFormBackward()
    {
        var g = new Generator(4);
        var lin = new Linear(3, 2, generator: g);
        var x = Tensor.Randn([5, 3], g).RequiresGrad_();
        var y = lin.Forward(x);
        var dy = Tensor.Randn([5, 2], g);
        y.Backward(dy);
        var W = lin.Weight.Detach();
        Close(x.MatMul(W.T).Add(lin.Bias!.Detach()).ToDoubleArray(), y, 1e-5);
        Close(dy.MatMul(W).ToDoubleArray(), x.Grad!, 1e-5);         // dX = dY·W  (W is [out, in])
        Close(dy.T.MatMul(x.Detach()).ToDoubleArray(), lin.Weight.Grad!, 1e-5); // dW = dYᵀ·X
        Close(dy.Sum(0).ToDoubleArray(), lin.Bias!.Grad!, 1e-5);    // db = Σ dY
    }

    [Fact]
    public void LinearGradCheckIncludingBatchDims()
    {
        var g = new Generator(5);
        Check(t => Functional.Linear(t[0], t[1], t[2]), R(g, 4, 3), R(g, 2, 3), R(g, 2));
        Check(t => Functional.Linear(t[0], t[1], t[2]), R(g, 2, 4, 3), R(g, 2, 3), R(g, 2));
        Check(t => Functional.Linear(t[0], t[1]), R(g, 3), R(g, 5, 3));
        Check(t => Functional.Linear(t[0].T, t[1], t[2]), R(g, 3, 4), R(g, 2, 3), R(g, 2)); // non-contiguous input
    }

    [Fact]
    public void LinearErrorsNameShapes()
    {
        var lin = new Linear(784, 16);
        var ex = Assert.Throws<ShapeException>(() => lin.Forward(Tensor.Zeros(32, 100)));
        Assert.Equal("Linear: expected input of shape [..., 784], got [32, 100].", ex.Message);
    }

    [Fact]
    public void DefaultInitMatchesPyTorchBounds()
    {
        var lin = new Linear(100, 50, generator: new Generator(6));
        var w = lin.Weight.ToArray();
        Assert.All(w, v => Assert.InRange(v, -0.1f, 0.1f));
        Assert.True(w.Max() > 0.09 && w.Min() < -0.09);
        var k = new Linear(100, 50, init: WeightInit.KaimingNormal, generator: new Generator(6));
        var std = Math.Sqrt(k.Weight.ToArray().Select(v => (double)v * v).Average());
        Assert.InRange(std, Math.Sqrt(2.0 / 100) * 0.9, Math.Sqrt(2.0 / 100) * 1.1);
    }

    [Fact]
    public void StateDictRoundTripAndMismatchErrors()
    {
        var a = new TwoLayer();
        var b = new TwoLayer();
        using (Tensor.NoGrad()) b.Fc1.Weight.Fill_(0);
        b.LoadStateDict(a.StateDict());
        Assert.Equal(a.Fc1.Weight.ToArray(), b.Fc1.Weight.ToArray());
        var sd = a.StateDict();
        sd.Tensors.Remove("scale");
        sd.Add("extra", Tensor.Zeros(1));
        var ex = Assert.Throws<InvalidDataException>(() => b.LoadStateDict(sd));
        Assert.Contains("missing keys: scale", ex.Message);
        Assert.Contains("unexpected keys: extra", ex.Message);
        var bad = a.StateDict();
        bad.Add("fc1.weight", Tensor.Zeros(3, 3));
        var ex2 = Assert.Throws<InvalidDataException>(() => b.LoadStateDict(bad));
        Assert.Contains("'fc1.weight': expected shape [4, 3], found [3, 3]", ex2.Message);
    }

    [Fact]
    public void ZeroGradKeepsBuffersAndTrainEvalPropagates()
    {
        var m = new TwoLayer();
        m.Forward(Tensor.Ones(2, 3)).Sum().Backward();
        var g = m.Fc1.Weight.Grad!;
        m.ZeroGrad();
        Assert.Same(g, m.Fc1.Weight.Grad);
        Assert.All(g.ToArray(), v => Assert.Equal(0f, v));
        m.Eval();
        Assert.False(m.Fc1.Training);
        m.Train();
        Assert.True(m.Fc1.Training);
    }

    [Fact]
    public void ModuleConvertsToFloat64ForGradCheck()
    {
        var m = new TwoLayer().To(DType.Float64);
        Assert.All(m.Parameters(), p => Assert.Equal(DType.Float64, p.DType));
        var y = m.Forward(Tensor.Ones([2, 3], DType.Float64));
        Assert.Equal(DType.Float64, y.DType);
    }

    [Fact]
    public void EmbeddingLooksUpRowsAndAccumulatesRepeats()
    {
        var e = new Embedding(5, 3, new Generator(7));
        var idx = Tensor.FromArray(new long[] { 1, 4, 1, 0, 2, 1 }, 2, 3);
        var y = e.Forward(idx);
        Assert.Equal(new[] { 2, 3, 3 }, y.Shape.ToArray());
        Assert.Equal(e.Weight.Detach().Select(0, 4).ToArray(), y.Select(0, 0).Select(0, 1).ToArray());
        y.Sum().Backward();
        Close([1, 1, 1, 3, 3, 3, 1, 1, 1, 0, 0, 0, 1, 1, 1], e.Weight.Grad!);
        Assert.Contains("int64", Assert.Throws<ArgumentException>(() => e.Forward(Tensor.Zeros(2))).Message);
        Check(t => t[0].IndexSelect(0, idx.Reshape(-1)).Reshape(2, 3, 3), R(new Generator(8), 5, 3));
    }

    [Fact]
    public void DropoutScalesInTrainingAndIsIdentityInEval()
    {
        var d = new Dropout(0.25, new Generator(9));
        var x = Tensor.Ones(10000);
        var y = d.Forward(x).ToArray();
        double zeros = y.Count(v => v == 0) / 10000.0;
        Assert.InRange(zeros, 0.22, 0.28);
        Assert.All(y.Where(v => v != 0), v => Assert.Equal(1 / 0.75f, v, 5));
        Assert.InRange(y.Average(), 0.97, 1.03);
        d.Eval();
        Assert.Same(x, d.Forward(x));
        var a = new Dropout(0.5, new Generator(1)).Forward(x).ToArray();
        var b = new Dropout(0.5, new Generator(1)).Forward(x).ToArray();
        Assert.Equal(a, b);
        var g = new Generator(10);
        Check(t => Functional.Dropout(t[0], 0.3, true, new Generator(11)), R(g, 4, 5));
    }

    [Fact]
    public void ActivationModulesAndFlatten()
    {
        var x = Tensor.FromArray([-1f, 0.5f]);
        Assert.Equal(x.Tanh().ToArray(), new Tanh().Forward(x).ToArray());
        Assert.Equal(x.Relu().ToArray(), Activation.Create("relu").Forward(x).ToArray());
        Assert.Equal(new[] { 2, 12 }, new Flatten().Forward(Tensor.Zeros(2, 3, 4)).Shape.ToArray());
        Assert.Contains("unknown activation 'swish'", Assert.Throws<ArgumentException>(() => Activation.Create("swish")).Message);
    }
}

public class LossTests
{
    [Fact]
    public void CrossEntropyValueAndGradientIsSoftmaxMinusOneHot()
    {
        var logits = Tensor.FromArray(new float[,] { { 1, 2, 3 }, { 1, 1, 1 } }).RequiresGrad_();
        var y = Tensor.FromArray(new long[] { 2, 0 });
        var loss = Loss.CrossEntropy(logits, y);
        double l0 = Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(3)) - 3, l1 = Math.Log(3);
        Close((l0 + l1) / 2, loss.Item(), 1e-6);
        loss.Backward();
        var sm = logits.Detach().Softmax(1).ToDoubleArray();
        var expected = sm.Select((v, i) => (v - (i == 2 || i == 3 ? 1 : 0)) / 2).ToArray();
        Close(expected, logits.Grad!, 1e-6);
        Close([l0, l1], Loss.CrossEntropy(logits.Detach(), y, Reduction.None), 1e-6);
        Close(l0 + l1, Loss.CrossEntropy(logits.Detach(), y, Reduction.Sum).Item(), 1e-6);
    }

    [Fact]
    public void CrossEntropyIsStableForHugeLogits()
    {
        var logits = Tensor.FromArray(new float[,] { { 1000, 0, -1000 } });
        Assert.Equal(0f, Loss.CrossEntropy(logits, Tensor.FromArray(new long[] { 0 })).Item(), 5);
        Assert.Equal(2000f, Loss.CrossEntropy(logits, Tensor.FromArray(new long[] { 2 })).Item(), 1);
    }

    [Fact]
    public void CrossEntropyOptions()
    {
        var g = new Generator(1);
        var logits = Tensor.Randn([4, 5], g, DType.Float64);
        var y = Tensor.FromArray(new long[] { 1, -100, 4, 0 });
        var all = Loss.CrossEntropy(logits, y, Reduction.None).ToDoubleArray();
        Assert.Equal(0, all[1]);
        Close((all[0] + all[2] + all[3]) / 3, Loss.CrossEntropy(logits, y).ItemDouble(), 1e-12);
        // probabilities equal to one-hot give the index loss
        var yy = Tensor.FromArray(new long[] { 1, 2, 4, 0 });
        var oh = Tensor.OneHot(yy, 5, DType.Float64);
        Close(Loss.CrossEntropy(logits, yy).ItemDouble(), Loss.CrossEntropy(logits, oh).ItemDouble(), 1e-12);
        // label smoothing = cross-entropy against the smoothed distribution
        var smooth = oh * 0.9 + 0.1 / 5;
        Close(Loss.CrossEntropy(logits, smooth).ItemDouble(), Loss.CrossEntropy(logits, yy, labelSmoothing: 0.1).ItemDouble(), 1e-12);
        Check(t => Loss.CrossEntropy(t[0], y), R(g, 4, 5));
        Check(t => Loss.CrossEntropy(t[0], yy, Reduction.None, labelSmoothing: 0.2), R(g, 4, 5));
        Check(t => Loss.CrossEntropy(t[0], t[1].Softmax(1), Reduction.Sum), R(g, 4, 5), R(g, 4, 5));
        Check(t => Loss.CrossEntropy(t[0], Tensor.FromArray(new long[] { 3 })), R(g, 5));
        var e1 = Assert.Throws<ShapeException>(() => Loss.CrossEntropy(Tensor.Zeros(4, 5), Tensor.FromArray(new long[] { 1, 2 })));
        Assert.Contains("expected class indices of shape [4] for logits [4, 5], got [2]", e1.Message);
        Assert.Contains("target class 7 at position 0 is out of range for 5 classes",
            Assert.Throws<IndexOutOfRangeException>(() => Loss.CrossEntropy(Tensor.Zeros(1, 5), Tensor.FromArray(new long[] { 7 }))).Message);
    }

    [Fact]
    public void OtherLosses()
    {
        var g = new Generator(2);
        var p = Tensor.FromArray([0.5f, 2f]);
        var t = Tensor.FromArray([1f, 0f]);
        Close(2.125, Loss.Mse(p, t).Item());
        Close(4.25, Loss.Mse(p, t, Reduction.Sum).Item());
        Check(x => Loss.Mse(x[0], x[1]), R(g, 3, 2), R(g, 3, 2));
        var prob = Tensor.FromArray([0.8f, 0.3f]);
        var lbl = Tensor.FromArray([1f, 0f]);
        Close((-Math.Log(0.8) - Math.Log(0.7)) / 2, Loss.BinaryCrossEntropy(prob, lbl).Item(), 1e-6);
        Close(100, Loss.BinaryCrossEntropy(Tensor.FromArray([0f]), Tensor.FromArray([1f])).Item());
        var logits = Tensor.FromArray([2f, -1f, 50f]);
        var tt = Tensor.FromArray([1f, 0f, 0f]);
        var expected = new[] { Math.Log(1 + Math.Exp(-2)), Math.Log(1 + Math.Exp(-1)), 50 + Math.Log(1 + Math.Exp(-50)) };
        Close(expected, Loss.BinaryCrossEntropyWithLogits(logits, tt, Reduction.None), 1e-6);
        Check(x => Loss.BinaryCrossEntropyWithLogits(x[0], x[1].Sigmoid()), R(g, 3, 2), R(g, 3, 2));
        Check(x => Loss.BinaryCrossEntropy(x[0].Sigmoid(), x[1].Sigmoid(), Reduction.Sum), R(g, 4), R(g, 4));
        // probabilities of exactly 0 and 1 (a saturated sigmoid) give finite gradients, PyTorch's (p − t) / max(p(1 − p), 1e-12)
        var sat = Tensor.FromArray([0f, 1f, 0f, 1f]).RequiresGrad_();
        Loss.BinaryCrossEntropy(sat, Tensor.FromArray([0f, 1f, 1f, 0f]), Reduction.Sum).Backward();
        Close([0, 0, -1e12, 1e12], sat.Grad!, 1e-6);
        var lp = Tensor.Randn([3, 4], g, DType.Float64).LogSoftmax(1);
        var y = Tensor.FromArray(new long[] { 0, 3, 1 });
        Close(Loss.CrossEntropy(Tensor.Zeros([3, 4], DType.Float64) + lp, y).ItemDouble(), Loss.NllLoss(lp, y).ItemDouble(), 1e-12);
        Check(x => Loss.NllLoss(x[0].LogSoftmax(1), y), R(g, 3, 4));
        Assert.Contains("must have the same shape", Assert.Throws<ShapeException>(() => Loss.Mse(Tensor.Zeros(2), Tensor.Zeros(3))).Message);
    }

    [Fact]
    public void EveryTargetIgnoredGivesANaNMeanAndZeroGradients()
    {
        var ignored = Tensor.FromArray(new long[] { -100, -100 });
        foreach (var loss in new Func<Tensor, Tensor>[]
        {
            x => Loss.CrossEntropy(x, ignored),
            x => Loss.CrossEntropy(x, ignored, labelSmoothing: 0.1),
            x => Loss.NllLoss(x.LogSoftmax(1), ignored),
        })
        {
            var x = Tensor.FromArray([1.0, 2.0, 3.0, -1.0, 0.5, 0.0], 2, 3).RequiresGrad_();
            var l = loss(x);
            Assert.True(double.IsNaN(l.ItemDouble()));
            l.Backward();
            Assert.All(x.Grad!.ToDoubleArray(), v => Assert.Equal(0.0, v));
        }
    }
}

public class FusedLinearTests
{
    [Theory]
    [InlineData(FusedActivation.Relu)]
    [InlineData(FusedActivation.Sigmoid)]
    [InlineData(FusedActivation.Tanh)]
    [InlineData(FusedActivation.Gelu)]
    public void FusedMatchesUnfusedAndPassesGradCheck(FusedActivation act)
    {
        var g = new Generator((ulong)act + 20);
        Func<Tensor, Tensor> f = act switch
        {
            FusedActivation.Relu => t => t.Relu(),
            FusedActivation.Sigmoid => t => t.Sigmoid(),
            FusedActivation.Tanh => t => t.Tanh(),
            _ => t => t.Gelu(),
        };
        var x = Tensor.Randn([6, 5], g).RequiresGrad_();
        var w = Tensor.Randn([4, 5], g).RequiresGrad_();
        var b = Tensor.Randn([4], g).RequiresGrad_();
        var dy = Tensor.Randn([6, 4], g);
        var fused = Functional.Linear(x, w, b, act);
        fused.Backward(dy);
        var (gx, gw, gb) = (x.Grad!.ToArray(), w.Grad!.ToArray(), b.Grad!.ToArray());
        x.Grad = w.Grad = b.Grad = null;
        var plain = f(Functional.Linear(x, w, b));
        plain.Backward(dy);
        Assert.Equal(plain.ToArray(), fused.ToArray());
        TestUtil.Close(x.Grad!.ToArray(), Tensor.FromArray(gx), 1e-6);
        TestUtil.Close(w.Grad!.ToArray(), Tensor.FromArray(gw), 1e-6);
        TestUtil.Close(b.Grad!.ToArray(), Tensor.FromArray(gb), 1e-6);
        TestUtil.Check(t => Functional.Linear(t[0], t[1], t[2], act), TestUtil.R(g, 2, 3, 5), TestUtil.R(g, 4, 5), TestUtil.R(g, 4));
    }

    [Fact]
    public void SequentialFusesLinearWithTheFollowingActivation()
    {
        var seq = new Sequential(new Linear(3, 4, generator: new Generator(1)), new Tanh(), new Linear(4, 2, generator: new Generator(2)));
        var y = seq.Forward(Tensor.Ones(2, 3).RequiresGrad_());
        Assert.Equal("Linear", y.GradFn!.Name);
        var h = seq[0].Forward(Tensor.Ones(2, 3));
        Assert.Equal(((Linear)seq[2]).Forward(h.Tanh()).ToArray(), y.ToArray());
    }
}

public class EmbeddingOpTests
{
    [Fact]
    public void EmbeddingOpMatchesIndexSelectAndPassesGradCheck()
    {
        var g = new Generator(31);
        var idx = Tensor.FromArray(new long[] { 3, 0, 3, 2, 4, 3 }, 2, 3);
        TestUtil.Check(t => Functional.Embedding(idx, t[0]), TestUtil.R(g, 5, 4));
        var w = Tensor.Randn([5, 4], g);
        Assert.Equal(w.IndexSelect(0, idx.Reshape(-1)).Reshape(2, 3, 4).ToArray(), Functional.Embedding(idx, w).ToArray());
        var ex = Assert.Throws<IndexOutOfRangeException>(() => Functional.Embedding(Tensor.FromArray(new long[] { 1, 5 }), w));
        Assert.Contains("index 5 (at flat position 1) is out of range for 5 embeddings", ex.Message);
        // a non-leaf weight (computed from a leaf) still gets its gradient through the graph
        var leaf = Tensor.Randn([5, 4], g).RequiresGrad_();
        Functional.Embedding(idx, leaf * 2).Sum().Backward();
        Assert.Equal(6f, leaf.Grad![3, 0]); // row 3 looked up three times, times 2
    }
}
