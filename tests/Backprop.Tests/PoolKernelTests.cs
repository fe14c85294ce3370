using Backprop.Backends;
using Backprop.NN;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>
/// The CPU max-pooling paths for windows inside the input (no padding or dilation: the 2×2 stride-2
/// pooling of the CNN preset, unrolled; any other kernel and stride) and, when the kernel equals the
/// stride, the write-once backward: against the reference backend, exactly (values, argmax indices and
/// gradients), with ties, NaNs, sizes the windows do not tile, float32 and float64, and a thread split.
/// Also the ReLU's gradient (SIMD selects) against the reference.
/// </summary>
[Collection("Threads")]
public class PoolKernelTests
{
    public static TheoryData<int, int, int, int, int, int, int, int, int> Geometries() => new()
    {
        // n, c, h, w, kh, kw, sh, sw, dtype (0 float32, 1 float64)
        { 3, 4, 9, 11, 2, 2, 2, 2, 0 },   // the preset's pooling; a row and a column no window covers
        { 3, 4, 9, 11, 2, 2, 2, 2, 1 },
        { 2, 3, 9, 37, 2, 2, 2, 2, 0 },   // 18 outputs a row: two 8-wide SIMD blocks and a scalar tail, an odd column
        { 3, 2, 28, 28, 2, 2, 2, 2, 0 },  // the preset's first pooling: 8 + 4 outputs a row in SIMD, 2 scalar
        { 4, 3, 14, 14, 2, 2, 2, 2, 0 },  // its second: 4 in SIMD (128-bit), 3 scalar
        { 2, 3, 10, 8, 3, 3, 3, 3, 0 },   // tiled 3×3: two rows no window covers
        { 1, 2, 7, 10, 2, 3, 2, 3, 1 },   // tiled 2×3, a column left over
        { 2, 2, 9, 7, 3, 3, 2, 2, 0 },    // overlapping windows: the unpadded forward, the scattering backward
        { 2, 3, 6, 7, 2, 2, 1, 1, 1 },    // the unrolled 2×2 at stride 1
        { 8, 16, 24, 24, 2, 2, 2, 2, 0 }, // planes split across threads
    };

    [Theory]
    [MemberData(nameof(Geometries))]
    public void MaxPoolAgreesWithTheReferenceExactly(int n, int c, int h, int w, int kh, int kw, int sh, int sw, int dtype)
    {
        var dt = dtype == 0 ? DType.Float32 : DType.Float64;
        var g = new Generator((ulong)(n * 1000 + h * 10 + w));
        // small integers: many ties within a window; and a few NaNs (which win, the last one of a window)
        var values = Tensor.RandInt(-3, 4, [n, c, h, w], g).ToDoubleArray();
        for (int i = 0; i < values.Length; i += 37) values[i] = double.NaN;
        for (int i = 5; i < values.Length; i += 41) values[i] = double.NaN;
        var x = Tensor.FromArray(values, n, c, h, w).To(dt);
        var dy = Tensor.Randn([n, c, (h - kh) / sh + 1, (w - kw) / sw + 1], g, dt);

        (double[] Y, double[] Idx, double[] Dx) Run(Device device)
        {
            var xd = x.To(device).Detach().RequiresGrad_();
            var (y, idx) = Functional.MaxPool2dWithIndices(xd, (kh, kw), (sh, sw));
            Assert.Equal(device, y.Device);
            y.Backward(dy.To(device));
            return (y.ToDoubleArray(), idx.ToDoubleArray(), xd.Grad!.ToDoubleArray());
        }
        var cpu = Run(Device.Cpu);
        var reference = Run(Device.Reference);
        Assert.Equal(reference.Idx, cpu.Idx);
        Assert.Equal(reference.Y, cpu.Y); // NaN equals NaN here
        Assert.Equal(reference.Dx, cpu.Dx);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void ReluGradientAgreesWithTheReference(int dtype)
    {
        var dt = dtype == 0 ? DType.Float32 : DType.Float64;
        var g = new Generator(5);
        var values = Tensor.Randn([1037], g).ToDoubleArray(); // not a multiple of any vector width
        for (int i = 0; i < values.Length; i += 29) values[i] = 0;
        for (int i = 3; i < values.Length; i += 31) values[i] = double.NaN;
        var x = Tensor.FromArray(values, values.Length).To(dt);
        var dy = Tensor.Randn([values.Length], g, dt);
        double[] Run(Device device)
        {
            var xd = x.To(device).Detach().RequiresGrad_();
            xd.Relu().Backward(dy.To(device));
            return xd.Grad!.ToDoubleArray();
        }
        var cpu = Run(Device.Cpu);
        Assert.Equal(Run(Device.Reference), cpu);
        Assert.Equal(0.0, cpu[0]);    // x = 0: no gradient (as PyTorch)
        Assert.Equal(0.0, cpu[3]);    // x = NaN: none either
        Assert.Contains(cpu, v => v != 0);
    }

    [Fact]
    public void TiledMaxPoolGradChecks()
    {
        var g = new Generator(21);
        Check(x => Functional.MaxPool2d(x[0], 3), R(g, 1, 2, 7, 8));
        Check(x => Functional.MaxPool2d(x[0], (2, 3), (2, 3)), R(g, 2, 1, 5, 7));
        Check(x => Functional.MaxPool2d(x[0], 2).Tanh(), R(g, 2, 2, 5, 5));
    }
}
