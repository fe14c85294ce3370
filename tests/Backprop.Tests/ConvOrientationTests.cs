using Backprop.Backends.Cpu;
using Backprop.NN;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>
/// Conv2d's weight gradient computed transposed (dWᵀ += col·dyᵀ in a per-thread buffer, transposed
/// into dw once per range of samples; CpuBackend.Conv.cs) must give the bits of the natural
/// orientation: forced wherever both products take the packed path (mode 2) against never (mode 1),
/// including groups, accumulation into an existing gradient and two threads splitting the batch.
/// </summary>
[Collection(nameof(ConvOrientationTests))] // changes a process-wide switch: not beside other conv tests of this class
public class ConvOrientationTests
{
    [Fact]
    public void ThePresetsSecondConvolutionIsTransposedWhereItFillsBetter()
    {
        // 64 output channels × 288 taps: with 12-row tiles the last is a third empty; as 288 × 64 none is.
        Assert.True(Gemm.FillsBetterTransposed(false, true, 64, 288, 196, 0));
        Assert.False(Gemm.FillsBetterTransposed(false, true, 12, 32, 196, 1.05)); // nothing to gain
        Assert.False(Gemm.FillsBetterTransposed(false, true, 4, 4, 4, 0));         // not the packed path
    }

    [Theory]
    [InlineData(3, 32, 14, 14, 64, 1, 1)] // the preset's second convolution
    [InlineData(5, 32, 14, 14, 64, 1, 2)] // two threads, an odd batch
    [InlineData(4, 64, 9, 11, 64, 2, 2)]  // two groups, odd sizes
    [InlineData(2, 40, 12, 10, 30, 1, 1)] // 30 output channels
    public void TheTransposedWeightGradientHasTheBitsOfTheNaturalOne(int n, int c, int h, int w, int o, int groups, int threads)
    {
        // every case is large enough for the packed path, so mode 2 transposes it
        Assert.True(Gemm.FillsBetterTransposed(false, true, o / groups, c / groups * 9, h * w, 0));
        var g = new Generator(43);
        var x = Tensor.Randn([n, c, h, w], g);
        var weight = Tensor.Randn([o, c / groups, 3, 3], g);
        var bias = Tensor.Randn([o], g);
        var dy1 = Tensor.Randn([n, o, h, w], g);
        var dy2 = Tensor.Randn([n, o, h, w], g);

        (Tensor Once, Tensor Twice) Run(int mode)
        {
            int was = ConvKernels<float>.TransposeMode;
            ConvKernels<float>.TransposeMode = mode;
            try
            {
                using var _ = Threads.Use(threads);
                var wi = weight.Clone().RequiresGrad_();
                Functional.Conv2d(x, wi, bias, padding: 1, groups: groups).Backward(dy1);
                var once = wi.Grad!.Clone();
                // a second backward accumulates into the existing gradient
                Functional.Conv2d(x, wi, bias, padding: 1, groups: groups).Backward(dy2);
                return (once, wi.Grad!.Clone());
            }
            finally { ConvKernels<float>.TransposeMode = was; }
        }

        var natural = Run(1);
        var transposed = Run(2);
        Assert.Equal(Bits(natural.Once), Bits(transposed.Once));
        Assert.Equal(Bits(natural.Twice), Bits(transposed.Twice));
        Assert.NotEqual(Bits(natural.Once), Bits(natural.Twice));
    }
}
