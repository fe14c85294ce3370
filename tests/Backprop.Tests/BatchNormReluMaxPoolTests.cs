using Backprop.NN;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>
/// Batch norm, ReLU and max pooling with tiling windows as one fused op (Functional.BatchNormReluMaxPool2d,
/// and Sequential's fusion of the three modules in training): gradient and second-derivative checks, the CPU
/// kernels against the reference backend, and bit-identity with the three ops one after the other (outputs,
/// gradients, running statistics), which the accuracy runs depend on. The CNN training steps of
/// BatchNormReluTests (specs with bn-relu-m2) cover the fusion inside whole models.
/// </summary>
public class BatchNormReluMaxPoolTests
{
    private static Tensor Op(Tensor x, Tensor? w, Tensor? b, (int, int) k, Tensor? rm = null, Tensor? rv = null) =>
        Functional.BatchNormReluMaxPool2d(x, rm, rv, w, b, training: true, momentum: 0.1, eps: 1e-5, k);

    [Fact]
    public void GradChecks()
    {
        var g = new Generator(51);
        Check(x => Op(x[0], x[1], x[2], (2, 2)), R(g, 3, 2, 4, 6), R(g, 2), R(g, 2));
        Check(x => Op(x[0], x[1], x[2], (2, 2)).Square(), R(g, 2, 3, 5, 5), R(g, 3), R(g, 3)); // a row and a column no window covers
        Check(x => Op(x[0], null, null, (3, 2)).Square(), R(g, 2, 2, 6, 4));
    }

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void CpuAgreesWithTheReferenceBackend(DType dtype)
    {
        var g = new Generator(52);
        double tol = dtype == DType.Float32 ? 2e-4 : 1e-10;
        BackendOracleTests.Agree(t => Op(t[0], t[1], t[2], (2, 2)), tol, Tensor.Randn([4, 3, 6, 7], g, dtype), Tensor.Randn([3], g, dtype), Tensor.Randn([3], g, dtype));
        BackendOracleTests.Agree(t => Op(t[0], null, null, (3, 3)), tol, Tensor.Randn([3, 2, 9, 10], g, dtype));
    }

    /// <summary>The fused op and BatchNorm, Relu, MaxPool2d on the same inputs: every output, gradient and running-statistic bit.</summary>
    [Theory]
    [InlineData(DType.Float32, 32, 8, 16, 16, 2, 2)]  // big enough for the channels to be split across threads
    [InlineData(DType.Float32, 5, 3, 15, 13, 2, 2)]   // odd sizes: SIMD bodies and tails, uncovered rows and columns
    [InlineData(DType.Float32, 4, 6, 28, 28, 2, 2)]   // the preset's first block, smaller batch
    [InlineData(DType.Float32, 2, 2, 400, 400, 2, 2)] // channels too large to keep their masked gradient: rebuilt in the second pass
    [InlineData(DType.Float32, 3, 2, 9, 8, 3, 2)]     // 3×2 windows
    [InlineData(DType.Float64, 4, 3, 6, 6, 2, 2)]
    public void FusedIsBitIdenticalToTheThreeOps(DType dtype, int n, int c, int h, int w, int kh, int kw)
    {
        foreach (int threads in new[] { 1, 2 })
        {
            using var _ = Threads.Use(threads);
            var g = new Generator(53);
            var x = Tensor.Randn([n, c, h, w], g, dtype) * 1.5 + 0.3;
            x.Flatten().Narrow(0, 0, 3).Fill_(0); // exact zeros among the inputs
            var weight = Tensor.Randn([c], g, dtype);
            var bias = Tensor.Randn([c], g, dtype);
            var dy = Tensor.Randn([n, c, h / kh, w / kw], g, dtype);
            var mean0 = Tensor.Randn([c], g, dtype);
            var var0 = Tensor.Uniform([c], 0.5, 2.0, g, dtype);

            // the output, the input, weight and bias gradients, the running statistics
            Tensor[] Run(bool fused)
            {
                var xi = x.Clone().RequiresGrad_();
                var wi = weight.Clone().RequiresGrad_();
                var bi = bias.Clone().RequiresGrad_();
                var rm = mean0.Clone();
                var rv = var0.Clone();
                var y = fused
                    ? Op(xi, wi, bi, (kh, kw), rm, rv)
                    : Functional.MaxPool2d(Functional.BatchNorm(xi, rm, rv, wi, bi, true, momentum: 0.1).Relu(), (kh, kw));
                Assert.Equal(fused ? "BatchNormReluMaxPool2d" : "MaxPool2d", y.GradFn!.Name);
                y.Backward(dy);
                return [y.Detach(), xi.Grad!, wi.Grad!, bi.Grad!, rm, rv];
            }

            AssertSameBits(Run(fused: false), Run(fused: true));
        }
    }

    [Fact]
    public void SequentialFusesTheThreeModulesInTrainingOnly()
    {
        var x = Tensor.Randn([4, 3, 6, 6], new Generator(54)).RequiresGrad_();
        var seq = new Sequential(new BatchNorm2d(3), new Relu(), new MaxPool2d(2));
        Assert.Equal("BatchNormReluMaxPool2d", seq.Forward(x).GradFn!.Name);
        // evaluation, windows that overlap or a hook on the pooling: batch norm + ReLU fused, the pooling apart
        seq.Eval();
        Assert.Equal("MaxPool2d", seq.Forward(x).GradFn!.Name);
        seq.Train();
        Assert.Equal("MaxPool2d", new Sequential(new BatchNorm2d(3), new Relu(), new MaxPool2d(3, stride: 2)).Forward(x).GradFn!.Name);
        using (seq[2].RegisterForwardHook((_, _, _) => null)) Assert.Equal("MaxPool2d", seq.Forward(x).GradFn!.Name);
        Sequential.FuseBatchNormRelu = false;
        try { Assert.Equal("MaxPool2d", seq.Forward(x).GradFn!.Name); }
        finally { Sequential.FuseBatchNormRelu = true; }
    }

    [Fact]
    public void EvaluationRunsTheThreeOps()
    {
        var g = new Generator(55);
        var x = Tensor.Randn([2, 3, 4, 4], g);
        var y = Functional.BatchNormReluMaxPool2d(x, Tensor.Zeros(3), Tensor.Ones(3), null, null, training: false, momentum: 0.1, eps: 1e-5, (2, 2));
        Assert.Equal(Bits(Functional.MaxPool2d(x.Relu() / Math.Sqrt(1 + 1e-5), (2, 2))), Bits(y));
    }
}
