using Backprop.Backends;
using Backprop.Cli.Training;
using Backprop.NN;
using Backprop.Optim;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>
/// Batch norm with the ReLU after it as one fused op (Functional.BatchNormRelu, and Sequential's fusion
/// of a batch-norm module followed by a Relu module): gradient and second-derivative checks, the CPU
/// kernels against the reference backend, and, since accuracy runs depend on it, bit-identity with the
/// two ops one after the other: outputs, gradients, running statistics, and a few training steps of CNNs.
/// </summary>
public class BatchNormReluTests
{
    [Fact]
    public void GradChecks()
    {
        var g = new Generator(21);
        Check(x => Functional.BatchNormRelu(x[0], null, null, x[1], x[2], training: true), R(g, 3, 2, 3, 5), R(g, 2), R(g, 2));
        Check(x => Functional.BatchNormRelu(x[0], null, null, training: true).Square(), R(g, 5, 3));
        var mean = R(g, 3);
        var variance = Pos(g, 3);
        Check(x => Functional.BatchNormRelu(x[0], mean, variance, x[1], x[2], training: false).Square(), R(g, 3, 3, 5, 3), R(g, 3), R(g, 3));
    }

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void CpuAgreesWithTheReferenceBackend(DType dtype)
    {
        var g = new Generator(22);
        double tol = dtype == DType.Float32 ? 2e-4 : 1e-10;
        var x = Tensor.Randn([4, 3, 5, 7], g, dtype);
        var w = Tensor.Randn([3], g, dtype);
        var b = Tensor.Randn([3], g, dtype);
        BackendOracleTests.Agree(t => Functional.BatchNormRelu(t[0], null, null, t[1], t[2], training: true), tol, x, w, b);
        BackendOracleTests.Agree(t => Functional.BatchNormRelu(t[0], null, null, training: true), tol, Tensor.Randn([6, 5], g, dtype));
        var mean = Tensor.Randn([3], g, dtype);
        var variance = Tensor.Uniform([3], 0.5, 2.0, g, dtype);
        BackendOracleTests.Agree(t => Functional.BatchNormRelu(t[0], mean.To(t[0].Device), variance.To(t[0].Device), t[1], t[2], training: false), tol, x, w, b);
    }

    /// <summary>The fused op and BatchNorm then Relu on the same inputs: every output, gradient and running-statistic bit.</summary>
    [Theory]
    [InlineData(DType.Float32, 32, 8, 16, 16, true)]  // big enough for the channels to be split across threads
    [InlineData(DType.Float32, 5, 3, 7, 9, true)]     // rows of 63: SIMD bodies and tails
    [InlineData(DType.Float32, 6, 4, 3, 1, false)]    // evaluation
    [InlineData(DType.Float32, 2, 2, 400, 400, true)] // channels too large to keep their masked gradient: taken again in the second pass
    [InlineData(DType.Float64, 4, 3, 5, 5, true)]
    public void FusedIsBitIdenticalToTheTwoOps(DType dtype, int n, int c, int h, int w, bool training)
    {
        foreach (int threads in new[] { 1, 2 })
        {
            using var _ = Threads.Use(threads);
            var g = new Generator(23);
            var x = Tensor.Randn([n, c, h, w], g, dtype) * 1.5 + 0.3;
            x.Flatten().Narrow(0, 0, 3).Fill_(0); // exact zeros among the inputs
            var weight = Tensor.Randn([c], g, dtype);
            var bias = Tensor.Randn([c], g, dtype);
            var dy = Tensor.Randn([n, c, h, w], g, dtype);
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
                    ? Functional.BatchNormRelu(xi, rm, rv, wi, bi, training, momentum: 0.1)
                    : Functional.BatchNorm(xi, rm, rv, wi, bi, training, momentum: 0.1).Relu();
                Assert.Equal(fused ? "BatchNormRelu" : "Relu", y.GradFn!.Name);
                y.Backward(dy);
                return [y.Detach(), xi.Grad!, wi.Grad!, bi.Grad!, rm, rv];
            }

            AssertSameBits(Run(fused: false), Run(fused: true));
        }
    }

    [Fact]
    public void SequentialFusesBatchNormFollowedByRelu()
    {
        var x = Tensor.Randn([4, 3, 5, 5], new Generator(24)).RequiresGrad_();
        var seq = new Sequential(new BatchNorm2d(3), new Relu());
        Assert.Equal("BatchNormRelu", seq.Forward(x).GradFn!.Name);
        Sequential.FuseBatchNormRelu = false;
        try { Assert.Equal("Relu", seq.Forward(x).GradFn!.Name); }
        finally { Sequential.FuseBatchNormRelu = true; }
        // a hook on either module keeps them apart (the hook sees the batch-norm output)
        using (seq[1].RegisterForwardHook((_, _, _) => null)) Assert.Equal("Relu", seq.Forward(x).GradFn!.Name);
    }

    /// <summary>
    /// A few Adam steps of CNNs with bn-relu blocks, pooling and dropout, Sequential's fusion on and off
    /// from the same seeds: every parameter and running statistic bit-identical after the steps.
    /// </summary>
    [Theory]
    [InlineData("1x12x12-c8-bn-relu-m2-c16-bn-relu-m2-d0.25-10", 16, 1)]
    [InlineData("1x12x12-c8-bn-relu-m2-c16-bn-relu-m2-d0.25-10", 16, 2)]
    [InlineData("1x10x10-c6-bn-relu-a2-d0.1-12-bn-relu-10", 12, 2)] // and BatchNorm1d + ReLU after the flatten
    public void TrainingStepsAreBitIdenticalWithAndWithoutTheFusion(string spec, int batch, int threads)
    {
        using var _ = Threads.Use(threads);
        var unfused = Train(spec, batch, fuse: false);
        var fused = Train(spec, batch, fuse: true);
        Assert.Equal(unfused.Keys, fused.Keys);
        foreach (var (name, bits) in unfused) Assert.True(bits.SequenceEqual(fused[name]), $"{name} differs");
    }

    private static Dictionary<string, int[]> Train(string spec, int batch, bool fuse)
    {
        Sequential.FuseBatchNormRelu = fuse;
        try
        {
            var parsed = CnnSpec.Parse(spec, "cnn:" + spec);
            var model = parsed.Build(new Generator(31));
            model.Train();
            var opt = new Adam(model.Parameters(), lr: 2e-3);
            var data = new Generator(32);
            var (ch, h, w) = parsed.Input;
            for (int step = 0; step < 4; step++)
            {
                var x = Tensor.Randn([batch, ch, h, w], data);
                var labels = Tensor.RandInt(0, parsed.Outputs, [batch], data);
                var loss = Loss.CrossEntropy(model.Forward(x), labels);
                opt.ZeroGrad();
                loss.Backward();
                opt.Step();
            }
            return model.StateDict().Tensors.Where(kv => kv.Value.DType.IsFloatingPoint()).ToDictionary(kv => kv.Key, kv => Bits(kv.Value));
        }
        finally
        {
            Sequential.FuseBatchNormRelu = true;
        }
    }
}
