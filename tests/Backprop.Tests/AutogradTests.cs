using Backprop.Autograd;

namespace Backprop.Tests;

public class AutogradTests
{
    [Fact]
    public void ChainRuleThroughTwoMultiplications()
    {
        // y = 2x, z = 4y: dz/dx = 8 from the two local slopes
        var x = Tensor.Scalar(3).RequiresGrad_();
        var y = 2 * x;
        var z = 4 * y;
        z.Backward();
        Assert.Equal(8f, x.Grad!.Item());
    }

    [Fact]
    public void BranchesAccumulate()
    {
        // f = x·x + 3x: df/dx = 2x + 3, the two uses of x add up
        var x = Tensor.FromArray([2f, -1f]).RequiresGrad_();
        var f = (x * x + 3 * x).Sum();
        f.Backward();
        Assert.Equal(new[] { 7f, 1f }, x.Grad!.ToArray());
    }

    [Fact]
    public void SharedParameterAccumulatesAcrossUses()
    {
        var w = Tensor.FromArray([0.5f]).RequiresGrad_();
        var a = Tensor.FromArray([2f]);
        var b = Tensor.FromArray([3f]);
        // the same weight used in two places (like tied embeddings): grad = a + b
        var loss = (w * a + w * b).Sum();
        loss.Backward();
        Assert.Equal(5f, w.Grad!.Item());
        // a second backward on a new graph accumulates into Grad
        (w * a).Sum().Backward();
        Assert.Equal(7f, w.Grad!.Item());
    }

    [Fact]
    public void GradientsFlowToInputs()
    {
        // optimize the data itself: minimize (x − 3)² by gradient descent on x
        var x = Tensor.FromArray([0f]).RequiresGrad_();
        for (int i = 0; i < 100; i++)
        {
            var loss = (x - 3).Pow(2).Sum();
            x.Grad = null;
            loss.Backward();
            using (Tensor.NoGrad()) x.Add_(x.Grad!, alpha: -0.1);
        }
        Assert.Equal(3f, x.Item(), 3);
    }

    [Fact]
    public void NoGradAndDetachCutTheGraph()
    {
        var x = Tensor.Ones(2).RequiresGrad_();
        using (Tensor.NoGrad())
        {
            var y = x * 2;
            Assert.False(y.RequiresGrad);
            Assert.Null(y.GradFn);
        }
        var d = (x * 2).Detach();
        Assert.False(d.RequiresGrad);
        Assert.True(d.IsLeaf);
        var z = (x * 2).Sum();
        Assert.True(z.RequiresGrad);
        Assert.Equal("Sum", z.GradFn!.Name);
    }

    [Fact]
    public void BackwardTwiceOnFreedGraphIsAClearError()
    {
        var x = Tensor.Ones(2).RequiresGrad_();
        var loss = x.Tanh().Sum();
        loss.Backward();
        var ex = Assert.Throws<InvalidOperationException>(() => loss.Backward());
        Assert.Contains("already freed", ex.Message);
        Assert.Contains("retainGraph: true", ex.Message);
        var loss2 = x.Tanh().Sum();
        loss2.Backward(retainGraph: true);
        loss2.Backward();
        double g = 1 - Math.Pow(Math.Tanh(1), 2);
        TestUtil.Close(new[] { 3 * g, 3 * g }, x.Grad!, 1e-5); // three backward passes accumulated
    }

    [Fact]
    public void NonScalarBackwardNeedsAGradient()
    {
        var x = Tensor.Ones(3).RequiresGrad_();
        var y = x * 2;
        var ex = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("only be created for a scalar output", ex.Message);
        Assert.Contains("[3]", ex.Message);
        y.Backward(Tensor.FromArray([1f, 10f, 100f]));
        Assert.Equal(new[] { 2f, 20f, 200f }, x.Grad!.ToArray());
        Assert.Contains("does not require grad", Assert.Throws<InvalidOperationException>(() => Tensor.Ones(1).Backward()).Message);
    }

    [Fact]
    public void RetainGradKeepsIntermediateGradients()
    {
        var x = Tensor.FromArray([1f, 2f]).RequiresGrad_();
        var h = (x * 3).RetainGrad();
        (h * h).Sum().Backward();
        Assert.Equal(new[] { 6f, 12f }, h.Grad!.ToArray());
        Assert.Equal(new[] { 18f, 36f }, x.Grad!.ToArray());
    }

    [Fact]
    public void InPlaceChangeOfASavedTensorIsDetected()
    {
        var x = Tensor.FromArray([1f, 2f]).RequiresGrad_();
        var w = Tensor.FromArray([3f, 4f]);
        var y = (x * w).Sum();
        w.Fill_(0);
        var ex = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("modified in place", ex.Message);
        Assert.Contains("Mul", ex.Message);
    }

    [Fact]
    public void RequiresGradOnlyOnLeaves()
    {
        var x = Tensor.Ones(2).RequiresGrad_();
        var y = x * 2;
        Assert.Throws<InvalidOperationException>(() => y.RequiresGrad = false);
        Assert.Throws<InvalidOperationException>(() => Tensor.FromArray(new long[] { 1 }).RequiresGrad_());
    }

    [Fact]
    public void UnusedBranchGetsNoGradient()
    {
        var a = Tensor.Ones(2).RequiresGrad_();
        var b = Tensor.Ones(2).RequiresGrad_();
        _ = b * 5; // built but never used in the loss
        (a * 2).Sum().Backward();
        Assert.NotNull(a.Grad);
        Assert.Null(b.Grad);
    }

    [Fact]
    public void DeepChainDoesNotOverflowTheStack()
    {
        var x = Tensor.Scalar(1.0).RequiresGrad_();
        var y = x;
        for (int i = 0; i < 20000; i++) y = y * 1.0;
        y.Backward();
        Assert.Equal(1f, x.Grad!.Item());
    }

    [Fact]
    public void AnomalyDetectionNamesTheOp()
    {
        var x = Tensor.FromArray([-1f, 2f]).RequiresGrad_();
        using (Tensor.DetectAnomaly())
        {
            var ex = Assert.Throws<AnomalyException>(() => x.Log());
            Assert.Equal("Log", ex.Op);
            Assert.Contains("NaN", ex.Message);
            Assert.Contains("[2]", ex.Message);
            Assert.Throws<AnomalyException>(() => x.Sqrt());
        }
        var ok = x.Log(); // outside the scope NaN is allowed
        Assert.True(float.IsNaN(ok.ToArray()[0]));
    }

    [Fact]
    public void AnomalyDetectionCatchesBackward()
    {
        // sqrt at 0 is finite forward but its gradient is infinite
        var x = Tensor.FromArray([0f, 4f]).RequiresGrad_();
        using (Tensor.DetectAnomaly())
        {
            var y = x.Sqrt().Sum();
            var ex = Assert.Throws<AnomalyException>(() => y.Backward());
            Assert.Equal("Sqrt", ex.Op);
            Assert.Contains("backward", ex.Message);
        }
    }

    [Fact]
    public void ScopesDisposedTwiceDoNotEndAnotherScope()
    {
        // Disposed twice: the second dispose must not push the depth below zero (which would
        // silently disable the next scope) nor end a scope opened since.
        var noGrad = Tensor.NoGrad();
        noGrad.Dispose();
        noGrad.Dispose();
        Assert.True(GradMode.IsEnabled);
        using (Tensor.NoGrad())
        {
            Assert.False(GradMode.IsEnabled);
            noGrad.Dispose();
            default(NoGradScope).Dispose();
            Assert.False(GradMode.IsEnabled);
        }
        Assert.True(GradMode.IsEnabled);

        var anomaly = Tensor.DetectAnomaly();
        anomaly.Dispose();
        anomaly.Dispose();
        Assert.False(GradMode.AnomalyDetection);
        using (Tensor.DetectAnomaly())
        {
            Assert.True(GradMode.AnomalyDetection);
            anomaly.Dispose();
            default(AnomalyScope).Dispose();
            Assert.True(GradMode.AnomalyDetection);
        }
        Assert.False(GradMode.AnomalyDetection);

        // Ended out of order: recording stays off until the inner scope ends too.
        var outer = Tensor.NoGrad();
        var inner = Tensor.NoGrad();
        outer.Dispose();
        Assert.False(GradMode.IsEnabled);
        inner.Dispose();
        Assert.True(GradMode.IsEnabled);
    }

    [Fact]
    public void NoGradScopesAllocateNothingOnceWarm()
    {
        for (int i = 0; i < 4; i++) using (Tensor.NoGrad()) using (Tensor.NoGrad()) { }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
            using (Tensor.NoGrad())
            using (Tensor.DetectAnomaly())
            using (Tensor.NoGrad()) { }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void AnomalyDetectionCoversInPlaceOps()
    {
        var t = Tensor.Zeros(2, 3);
        using (Tensor.DetectAnomaly())
        {
            var e = Assert.Throws<AnomalyException>(() => t.Div_(0));
            Assert.Equal("Div_", e.Op);
            Assert.Contains("Div_ wrote 6 NaN value(s)", e.Message);
            Assert.Contains("in place into a tensor of shape [2, 3]", e.Message);
            Assert.Equal("Fill_", Assert.Throws<AnomalyException>(() => Tensor.Zeros(2).Fill_(double.PositiveInfinity)).Op);
            Assert.Equal("Add_", Assert.Throws<AnomalyException>(() => Tensor.Zeros(2).Add_(Tensor.FromArray([1f, float.NaN]))).Op);
            Assert.Equal("SetElement", Assert.Throws<AnomalyException>(() => Tensor.Zeros(2).SetElement([1], double.NaN)).Op);
            Tensor.Ones(2).Mul_(3).Add_(1); // finite results pass
        }
        Tensor.Zeros(2).Div_(0); // outside the scope nothing is checked
    }
}
