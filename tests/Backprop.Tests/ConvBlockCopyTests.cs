using Backprop.NN;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>
/// The unfold (im2col) and fold (col2im) of stride-1 convolutions whose output is as wide as the input
/// ("same" padding) run as one block copy / add per tap (CpuBackend.Conv.cs, Im2ColSame and Col2ImSame).
/// They must give the same bits as the general row-by-row loops, which a convolution of the input padded
/// by hand (zeros concatenated around it, then no padding) still runs: forward, weight, bias and input
/// gradients compared bit for bit.
/// </summary>
public class ConvBlockCopyTests
{
    [Theory]
    [InlineData(3, 4, 14, 14, 8, 3, 1, 1)]  // the preset's second convolution, smaller
    [InlineData(2, 3, 7, 9, 5, 3, 1, 1)]    // odd sizes, rows not a multiple of the SIMD width
    [InlineData(2, 2, 6, 6, 3, 5, 2, 1)]    // 5×5, pad 2
    [InlineData(2, 2, 8, 7, 3, 3, 2, 2)]    // dilation 2, pad 2
    [InlineData(1, 2, 2, 2, 2, 5, 2, 1)]    // a kernel larger than the input: taps entirely in the padding
    public void BlockCopiesGiveTheBitsOfTheGeneralLoops(int n, int c, int h, int w, int o, int k, int pad, int dilation)
    {
        var g = new Generator(41);
        var x = Tensor.Randn([n, c, h, w], g);
        var weight = Tensor.Randn([o, c, k, k], g);
        var bias = Tensor.Randn([o], g);
        var dy = Tensor.Randn([n, o, h, w], g);

        (Tensor y, Tensor dx, Tensor dw, Tensor db) Run(bool byHand)
        {
            var xi = x.Clone().RequiresGrad_();
            var wi = weight.Clone().RequiresGrad_();
            var bi = bias.Clone().RequiresGrad_();
            Tensor y;
            if (byHand)
            {
                var cols = Tensor.Zeros([n, c, h, pad]);
                var wide = Tensor.Concat([cols, xi, cols], 3);
                var rows = Tensor.Zeros([n, c, pad, w + 2 * pad]);
                y = Functional.Conv2d(Tensor.Concat([rows, wide, rows], 2), wi, bi, dilation: dilation);
            }
            else y = Functional.Conv2d(xi, wi, bi, padding: pad, dilation: dilation);
            Assert.Equal([n, o, h, w], y.Shape.ToArray());
            y.Backward(dy);
            return (y.Detach(), xi.Grad!, wi.Grad!, bi.Grad!);
        }

        var general = Run(byHand: true);
        var block = Run(byHand: false);
        Assert.Equal(Bits(general.y), Bits(block.y));
        Assert.Equal(Bits(general.dx), Bits(block.dx));
        Assert.Equal(Bits(general.dw), Bits(block.dw));
        Assert.Equal(Bits(general.db), Bits(block.db));
    }
}
