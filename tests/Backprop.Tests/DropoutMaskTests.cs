using Backprop.NN;

namespace Backprop.Tests;

/// <summary>
/// Dropout draws its float32 mask with Generator.FillDropoutMask (the generator's state in registers,
/// no branch per element): it must give the bits of the plain loop <c>g.NextDouble() &lt; p ? 0 : scale</c>
/// and leave the generator where that loop leaves it, so training runs are unchanged.
/// </summary>
public class DropoutMaskTests
{
    [Theory]
    [InlineData(0.25, 1001)]
    [InlineData(0.5, 7)]
    [InlineData(1.0, 33)]
    [InlineData(1e-9, 64)]
    public void TheMaskIsTheOneThePlainLoopDraws(double p, int length)
    {
        var fast = new Generator(51);
        var plain = new Generator(51);
        float scale = p == 1 ? 0f : (float)(1 / (1 - p));
        var mask = new float[length];
        fast.FillDropoutMask(mask, p, scale);
        for (int i = 0; i < length; i++)
        {
            float expected = plain.NextDouble() < p ? 0f : scale;
            Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(mask[i]));
        }
        Assert.Equal(plain.NextUInt64(), fast.NextUInt64()); // the same state afterwards
    }

    [Fact]
    public void DropoutKeepsItsValuesAndGradient()
    {
        var x = Tensor.Randn([8, 5, 3], new Generator(52)).RequiresGrad_();
        var y = Functional.Dropout(x, 0.3, training: true, new Generator(53));
        var g = new Generator(53);
        var expected = x.ToArray().Select(v => v * (g.NextDouble() < 0.3 ? 0f : (float)(1 / 0.7))).ToArray();
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), y.ToArray().Select(BitConverter.SingleToInt32Bits));
        y.Sum().Backward();
        Assert.Equal(y.ToArray().Select(v => v == 0 ? 0f : (float)(1 / 0.7)), x.Grad!.ToArray());
    }
}
