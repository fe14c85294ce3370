using Backprop.Autograd;
using Backprop.NN;
using Backprop.Optim;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>Gradients of gradients: createGraph, Gradients.Compute, Hessian-vector products, gradient penalties.</summary>
public class HigherOrderTests
{
    [Fact]
    public void ThirdDerivativeOfTanh()
    {
        // y = tanh x; y' = 1 − y²; y'' = −2y(1 − y²); y''' = −2(1 − y²)(1 − 3y²)
        double[] xs = [-1.3, -0.2, 0.0, 0.7, 2.1];
        var x = Tensor.FromArray(xs).RequiresGrad_();
        var y = x.Tanh();
        var d1 = Gradients.Compute(y.Sum(), [x], createGraph: true)[0];
        var d2 = Gradients.Compute(d1.Sum(), [x], createGraph: true)[0];
        var d3 = Gradients.Compute(d2.Sum(), [x])[0];
        for (int i = 0; i < xs.Length; i++)
        {
            double t = Math.Tanh(xs[i]);
            Close(1 - t * t, d1.ToDoubleArray()[i], 1e-12);
            Close(-2 * t * (1 - t * t), d2.ToDoubleArray()[i], 1e-12);
            Close(-2 * (1 - t * t) * (1 - 3 * t * t), d3.ToDoubleArray()[i], 1e-12);
        }
        Assert.Null(x.Grad); // Gradients.Compute returns, it does not accumulate
    }

    [Fact]
    public void BackwardWithCreateGraphLeavesADifferentiableGrad()
    {
        var x = Tensor.FromArray([0.5, -1.5]).RequiresGrad_();
        (x * x * x).Sum().Backward(createGraph: true); // Grad = 3x², with a graph
        var g = x.Grad!;
        Assert.True(g.RequiresGrad);
        Close([0.75, 6.75], g, 1e-12);
        x.Grad = null;
        g.Sum().Backward(); // d/dx Σ 3x² = 6x
        Close([3.0, -9.0], x.Grad!, 1e-12);
    }

    [Fact]
    public void HessianVectorProductOfAnMlpMatchesFiniteDifferencesOfTheGradient()
    {
        var g = new Generator(5);
        var model = new Sequential(new Linear(3, 8, dtype: DType.Float64, generator: g), new Tanh(),
            new Linear(8, 8, dtype: DType.Float64, generator: g), new Gelu(), new Linear(8, 2, dtype: DType.Float64, generator: g));
        var x = Tensor.Randn([6, 3], g, DType.Float64);
        var target = Tensor.FromArray(new long[] { 0, 1, 1, 0, 1, 0 });
        var ps = model.Parameters().ToArray();
        var v = ps.Select(p => Tensor.Randn([.. p.Shape.AsSpan()], g, DType.Float64)).ToArray();

        Tensor[] Grad(bool create) => Gradients.Compute(Loss.CrossEntropy(model.Forward(x), target), ps, createGraph: create);

        // Hv = ∂/∂θ ⟨∂L/∂θ, v⟩
        var grads = Grad(create: true);
        var dot = grads.Zip(v, (a, b) => (a * b).Sum()).Aggregate((a, b) => a + b);
        var hv = Gradients.Compute(dot, ps);

        // (∇L(θ + εv) − ∇L(θ − εv)) / 2ε
        const double eps = 1e-5;
        Tensor[] Shifted(double s)
        {
            using (Tensor.NoGrad()) for (int i = 0; i < ps.Length; i++) ps[i].Add_(v[i] * s);
            var r = Grad(create: false);
            using (Tensor.NoGrad()) for (int i = 0; i < ps.Length; i++) ps[i].Add_(v[i] * -s);
            return r;
        }
        var plus = Shifted(eps);
        var minus = Shifted(-eps);
        for (int i = 0; i < ps.Length; i++)
        {
            var numeric = ((plus[i] - minus[i]) / (2 * eps)).ToDoubleArray();
            Close(numeric, hv[i], 1e-5);
        }
    }

    [Fact]
    public void GradientPenaltyTrainingStepTrains()
    {
        // loss + λ‖∂loss/∂x‖²: the penalty's gradient with respect to the weights needs second derivatives.
        var g = new Generator(9);
        var model = new Sequential(new Linear(2, 16, generator: g), new Tanh(), new Linear(16, 2, generator: g));
        var data = Backprop.Data.Circles.Generate(256, noise: 0.05, seed: 3);
        var x = data.Inputs.To(Backprop.Backends.Backend.Default); // datasets live on the CPU; the model on the default device
        var y = data.Targets.To(Backprop.Backends.Backend.Default);
        var opt = new Adam(model.Parameters(), lr: 0.02);
        double first = 0, firstPenalty = 0, last = 0, lastPenalty = 0;
        for (int step = 0; step < 150; step++)
        {
            var xi = x.Detach().RequiresGrad_();
            var loss = Loss.CrossEntropy(model.Forward(xi), y);
            var dx = Gradients.Compute(loss, [xi], createGraph: true)[0];
            var penalty = (dx * dx).Sum();
            var total = loss + penalty * 10;
            opt.ZeroGrad();
            total.Backward();
            Assert.All(model.Parameters(), p => Assert.False(p.Grad!.RequiresGrad));
            opt.Step();
            if (step == 0) { first = loss.Item(); firstPenalty = penalty.Item(); }
            last = loss.Item();
            lastPenalty = penalty.Item();
        }
        Assert.True(last < first * 0.5, $"loss {first} -> {last}");
        Assert.True(double.IsFinite(lastPenalty) && lastPenalty < 0.05, $"penalty {firstPenalty} -> {lastPenalty}");
    }

    [Fact]
    public void GradientPenaltyMatchesFiniteDifferences()
    {
        // d/dw of ‖∂L/∂x‖² through a fused Linear+Tanh and cross-entropy, checked numerically.
        var g = new Generator(4);
        var x = R(g, 5, 3);
        var y = Tensor.FromArray(new long[] { 0, 2, 1, 1, 0 });
        var report = GradCheck.Run(t =>
        {
            using var on = Tensor.EnableGrad();
            var xi = x.Detach().RequiresGrad_();
            var h = Functional.Linear(xi, t[0], t[1], FusedActivation.Tanh);
            var loss = Loss.CrossEntropy(Functional.Linear(h, t[2]), y);
            var dx = Gradients.Compute(loss, [xi], createGraph: true)[0];
            return (dx * dx).Sum();
        }, [R(g, 4, 3), R(g, 4), R(g, 3, 4)]);
        Assert.True(report.Passed, report.ToString());
    }

    [Fact]
    public void EnableGradAndNoGradNest()
    {
        var x = Tensor.FromArray([1.0]).RequiresGrad_();
        using (Tensor.NoGrad())
        {
            Assert.False((x * 2).RequiresGrad);
            using (Tensor.EnableGrad())
            {
                Assert.True((x * 2).RequiresGrad);
                using (Tensor.NoGrad()) Assert.False((x * 2).RequiresGrad);
                Assert.True((x * 2).RequiresGrad);
            }
            Assert.False((x * 2).RequiresGrad);
        }
        Assert.True((x * 2).RequiresGrad);
    }

    [Fact]
    public void GradientsComputeReturnsWithoutAccumulating()
    {
        var w = Tensor.FromArray([2.0, 3.0]).RequiresGrad_();
        var b = Tensor.FromArray([1.0]).RequiresGrad_();
        var unused = Tensor.FromArray([1.0]).RequiresGrad_();
        var h = w * w;                 // an intermediate tensor can be an input too
        var loss = (h * b).Sum();
        var grads = Gradients.Compute([loss], [w, h, b, unused], allowUnused: true);
        Close([4.0, 6.0], grads[0]!, 1e-12);
        Close([1.0, 1.0], grads[1]!, 1e-12);
        Close([13.0], grads[2]!, 1e-12);
        Assert.Null(grads[3]);
        Assert.Null(w.Grad);
        Assert.Null(b.Grad);
        var e = Assert.Throws<InvalidOperationException>(() => Gradients.Compute([(w * 2).Sum()], [w, unused]));
        Assert.Contains("input 1 (shape [1]) is not reached from the outputs", e.Message);
        var e2 = Assert.Throws<ArgumentException>(() => Gradients.Compute([(w * 2).Sum()], [Tensor.Zeros(2)]));
        Assert.Contains("does not require grad", e2.Message);
    }

    [Fact]
    public void GradientsComputeWithOutputGradientsAndSeveralOutputs()
    {
        var x = Tensor.FromArray([1.0, 2.0]).RequiresGrad_();
        var a = x * 3;
        var b = x * x;
        var grads = Gradients.Compute([a, b], [x], [Tensor.FromArray([1.0, 10.0]), Tensor.FromArray([2.0, 0.5])]);
        Close([3 + 2 * 2 * 1.0, 30 + 0.5 * 2 * 2.0], grads[0]!, 1e-12);
    }

    [Fact]
    public void ReturnedGradientsSurviveTheirPass()
    {
        // fused (non-createGraph) gradients come from the pass's temporaries: the returned ones must be kept
        var x = Tensor.Randn([4, 3], new Generator(2)).RequiresGrad_();
        var w = Tensor.Randn([5, 3], new Generator(3)).RequiresGrad_();
        var gx = Gradients.Compute(Functional.Linear(x, w, null, FusedActivation.Relu).Sum(), x, w);
        var again = Gradients.Compute(Functional.Linear(x, w, null, FusedActivation.Relu).Sum(), x, w);
        Close(again[0].ToDoubleArray(), gx[0], 0);
        Close(again[1].ToDoubleArray(), gx[1], 0);
    }

    [Fact]
    public void InPlaceChangesAreCaughtForEveryInputAndSavedTensor()
    {
        // third input of a node (the bias of Linear)
        var x = Tensor.Randn([2, 3], new Generator(1)).RequiresGrad_();
        var w = Tensor.Randn([4, 3], new Generator(2)).RequiresGrad_();
        var b = Tensor.Randn([4], new Generator(3)).RequiresGrad_();
        var y = Functional.Linear(x, w, b).Sum();
        using (Tensor.NoGrad()) b.Fill_(0.5);
        Assert.Contains("third input of Linear", Assert.Throws<InvalidOperationException>(() => y.Backward()).Message);
        // inputs of an n-ary op (Concat)
        var p = Tensor.Randn([2], new Generator(4)).RequiresGrad_();
        var q = Tensor.Randn([2], new Generator(5)).RequiresGrad_();
        var r = Tensor.Randn([2], new Generator(6)).RequiresGrad_();
        var c = Tensor.Concat([p, q, r]).Sum();
        using (Tensor.NoGrad()) r.Fill_(0.5);
        Assert.Contains("input 2 of Concat", Assert.Throws<InvalidOperationException>(() => c.Backward()).Message);
        // a saved tensor that is not an input: the indices Max(dim) returns and its backward scatters into
        var t = Tensor.Randn([3, 2], new Generator(7)).RequiresGrad_();
        var (values, indices) = t.Max(0);
        var s = values.Sum();
        indices.Fill_(0);
        Assert.Contains("a tensor it saved", Assert.Throws<InvalidOperationException>(() => s.Backward()).Message);
    }

    [Fact]
    public void GradGradCheckCatchesAWrongSecondDerivative()
    {
        // a custom op whose backward treats its input as a constant: right gradient, wrong second derivative
        var report = GradGradCheck.Run(t => new ConstantSlopeSquare(t[0]).Value, [Tensor.FromArray([0.3, -1.2])]);
        Assert.False(report.Passed);
        Assert.True(GradCheck.Run(t => new ConstantSlopeSquare(t[0]).Value, [Tensor.FromArray([0.3, -1.2])]).Passed);
    }

    /// <summary>x² whose backward multiplies by a detached 2x: right first derivative, second derivative 0 instead of 2.</summary>
    private sealed class ConstantSlopeSquare
    {
        public Tensor Value { get; }

        public ConstantSlopeSquare(Tensor x)
        {
            Value = CustomFunction.Apply("ConstantSlopeSquare", [x],
                forward: xs => xs[0].Detach() * xs[0].Detach(),
                backward: (xs, dy) => [dy * (xs[0].Detach() * 2)]);
        }
    }
}
