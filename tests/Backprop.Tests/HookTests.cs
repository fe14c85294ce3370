using Backprop.NN;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>Gradient hooks on tensors, post-accumulate hooks on parameters, RetainGrad through the engine.</summary>
public class HookTests
{
    [Fact]
    public void LeafHookSeesTheWholeGradientOnceAndMayReplaceIt()
    {
        var x = Tensor.FromArray([1.0, 2.0]).RequiresGrad_();
        var seen = new List<double[]>();
        using var h = x.RegisterHook(g => { seen.Add(g.ToDoubleArray()); return g * 10; });
        (x * 3 + x * x).Sum().Backward(); // two uses of x: 3 and 2x
        Assert.Single(seen);
        Assert.Equal(new[] { 5.0, 7.0 }, seen[0]);
        Close([50.0, 70.0], x.Grad!, 1e-12);
    }

    [Fact]
    public void NonLeafHookRunsBeforeTheGradientFlowsOn()
    {
        var x = Tensor.FromArray([1.0, -2.0]).RequiresGrad_();
        var h = x * 2;
        double[]? seen = null;
        var handle = h.RegisterHook(g => { seen = g.ToDoubleArray(); return g.Neg(); });
        (h * h).Sum().Backward(retainGraph: true);
        Assert.Equal(new[] { 4.0, -8.0 }, seen);
        Close([-8.0, 16.0], x.Grad!, 1e-12);
        handle.Dispose();
        x.Grad = null;
        (h * h).Sum().Backward();
        Close([8.0, -16.0], x.Grad!, 1e-12);
    }

    [Fact]
    public void HookReturningAWrongShapeIsAnError()
    {
        var x = Tensor.FromArray([1.0, 2.0]).RequiresGrad_();
        using var h = x.RegisterHook(_ => Tensor.Zeros([3], DType.Float64));
        var e = Assert.Throws<InvalidOperationException>(() => (x * 2).Sum().Backward());
        Assert.Contains("returned a gradient of shape [3]", e.Message);
    }

    [Fact]
    public void PostAccumulateHookFiresOnceAfterTiedWeightsReceivedBothContributions()
    {
        // one Linear used twice: its weight gets two contributions in one backward pass
        var shared = new Linear(3, 3, dtype: DType.Float64, generator: new Generator(2));
        var model = new Sequential(shared, new Tanh(), shared);
        var x = Tensor.Randn([4, 3], new Generator(3), DType.Float64);
        var reference = new Sequential(shared, new Tanh(), shared);
        reference.Forward(x).Sum().Backward();
        var expected = shared.Weight.Grad!.ToDoubleArray();
        shared.Weight.Grad = null;
        shared.Bias!.Grad = null;

        var fired = new List<double[]>();
        var order = new List<string>();
        using var h1 = shared.Weight.RegisterPostAccumulateGradHook(p => { fired.Add(p.Grad!.ToDoubleArray()); order.Add("weight"); });
        using var h2 = shared.Bias.RegisterPostAccumulateGradHook(_ => order.Add("bias"));
        model.Forward(x).Sum().Backward();
        Assert.Single(fired);
        Close(expected, Tensor.FromArray(fired[0]), 1e-12); // the hook saw the sum of both uses
        Assert.Equal(2, order.Count);
        Close(expected, shared.Weight.Grad!, 1e-12);
    }

    [Fact]
    public void PostAccumulateHooksFireWhileBackwardIsStillRunning()
    {
        // the last layer's parameters are done before the first layer's backward runs
        var l1 = new Linear(2, 4, generator: new Generator(1));
        var l2 = new Linear(4, 1, generator: new Generator(2));
        var events = new List<string>();
        using var a = l2.Weight.RegisterPostAccumulateGradHook(_ => events.Add("l2.weight"));
        using var b = l1.Weight.RegisterPostAccumulateGradHook(_ => events.Add("l1.weight"));
        var x = Tensor.Randn([3, 2], new Generator(3));
        var hidden = l1.Forward(x);
        using var c = hidden.RegisterHook(g => { events.Add("hidden"); return null; });
        l2.Forward(hidden.Tanh()).Sum().Backward();
        Assert.Equal(new[] { "l2.weight", "hidden", "l1.weight" }, events);
    }

    [Fact]
    public void GradientsComputeDoesNotFirePostAccumulateHooks()
    {
        var w = Tensor.FromArray([1.0]).RequiresGrad_();
        int fired = 0;
        using var h = w.RegisterPostAccumulateGradHook(_ => fired++);
        var g = Gradients.Compute((w * w).Sum(), w);
        Assert.Equal(0, fired);
        Close([2.0], g[0], 1e-12);
        (w * w).Sum().Backward();
        Assert.Equal(1, fired);
    }

    [Fact]
    public void RetainGradKeepsAnIntermediateGradient()
    {
        var x = Tensor.FromArray([1.0, 2.0]).RequiresGrad_();
        var h = (x * 3).RetainGrad();
        (h * h).Sum().Backward();
        Close([6.0, 12.0], h.Grad!, 1e-12);
        Close([18.0, 36.0], x.Grad!, 1e-12);
    }

    [Fact]
    public void HooksNeedATensorThatRequiresGrad()
    {
        Assert.Contains("does not require grad", Assert.Throws<InvalidOperationException>(() => Tensor.Zeros(2).RegisterHook(g => g)).Message);
        var x = Tensor.Zeros(2).RequiresGrad_();
        Assert.Contains("only leaf tensors", Assert.Throws<InvalidOperationException>(() => (x * 2).RegisterPostAccumulateGradHook(_ => { })).Message);
    }
}
