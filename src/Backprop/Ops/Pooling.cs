using Backprop.Autograd;
using Backprop.Backends;

namespace Backprop.NN;

// 2-D pooling over NCHW (or unbatched CHW) tensors: max, average, adaptive average. Each is one
// backend kernel forward; each backward is itself a recorded op (the max pooling's a scatter of the
// gradient by the saved argmax indices, the average pooling's its adjoint), so second derivatives work.
public static partial class Functional
{
    /// <summary>
    /// Max pooling (torch.nn.functional.max_pool2d, ceil_mode=False) over [N, C, H, W] or [C, H, W]:
    /// each output is the largest value of a kernel window; windows start every <paramref name="stride"/>
    /// (default: the kernel size) over the input padded with −∞, and take taps <paramref name="dilation"/> apart.
    /// Backward sends each output's gradient to the position its maximum came from.
    /// </summary>
    public static Tensor MaxPool2d(Tensor x, int kernelSize, int? stride = null, int padding = 0, int dilation = 1) =>
        MaxPool2d(x, (kernelSize, kernelSize), stride is int s ? (s, s) : null, (padding, padding), (dilation, dilation));

    /// <inheritdoc cref="MaxPool2d(Tensor, int, int?, int, int)"/>
    public static Tensor MaxPool2d(Tensor x, (int H, int W) kernelSize, (int H, int W)? stride = null, (int H, int W) padding = default, (int H, int W)? dilation = null) =>
        MaxPool2dCore(x, kernelSize, stride, padding, dilation, keepIndices: false).Output;

    /// <summary>
    /// <see cref="MaxPool2d(Tensor, ValueTuple{int, int}, ValueTuple{int, int}?, ValueTuple{int, int}, ValueTuple{int, int}?)"/>
    /// with the argmax of each window (return_indices=True): int64 positions h·W + w within each input plane.
    /// </summary>
    public static (Tensor Output, Tensor Indices) MaxPool2dWithIndices(Tensor x, (int H, int W) kernelSize, (int H, int W)? stride = null,
        (int H, int W) padding = default, (int H, int W)? dilation = null) =>
        MaxPool2dCore(x, kernelSize, stride, padding, dilation, keepIndices: true);

    private static (Tensor Output, Tensor Indices) MaxPool2dCore(Tensor x, (int H, int W) kernel, (int H, int W)? stride, (int H, int W) padding,
        (int H, int W)? dilation, bool keepIndices)
    {
        var d = dilation ?? (1, 1);
        var s = stride ?? kernel;
        var x4 = PoolInput("MaxPool2d", x);
        var g = PoolGeometry("MaxPool2d", x4, kernel, s, padding, d, countIncludePad: false);
        var xc = x4.ContiguousData();
        var y = Tensor.Empty([g.N, g.C, g.OH, g.OW], x.DType, x.Backend);
        var indices = Tensor.Empty([g.N, g.C, g.OH, g.OW], DType.Int64, x.Backend);
        x.Backend.MaxPool2d(xc.V, y.V, indices.V, g);
        Engine.Record(y, "MaxPool2d", new MaxPool2dBackward(x4, indices, g), x4, saved0: indices);
        return x.Rank == 3 ? (y.Squeeze(0), indices.Squeeze(0)) : (y, indices);
    }

    /// <summary>The gradient goes back to where each maximum came from: a scatter of dy by the saved indices.</summary>
    private readonly struct MaxPool2dBackward(Tensor x, Tensor indices, Pool2dGeometry g) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(MaxPoolScatter(dy, indices, g));
    }

    /// <summary>dx = zeros of the input's shape with dy added at the saved argmax positions (a recorded op: its backward gathers).</summary>
    private static Tensor MaxPoolScatter(Tensor dy, Tensor indices, Pool2dGeometry g)
    {
        var dyc = dy.ContiguousData();
        var dx = Tensor.Empty([g.N, g.C, g.H, g.W], dy.DType, dy.Backend);
        Dispatch.BackendOf("MaxPool2dBackward", dy, indices).MaxPool2dBackward(dyc.V, indices.V, dx.V, g);
        Engine.Record(dx, "MaxPool2dBackward", new MaxPoolScatterBackward(dy, indices, g), dy, saved0: indices);
        return dx;
    }

    /// <summary>The adjoint of the scatter: each output gradient reads the input gradient at its argmax.</summary>
    private readonly struct MaxPoolScatterBackward(Tensor dy, Tensor indices, Pool2dGeometry g) : IBackward
    {
        public void Backward(Tensor ddx) =>
            dy.AccumulateGrad(ddx.Reshape(g.N, g.C, g.H * g.W).Gather(2, indices.Reshape(g.N, g.C, g.OH * g.OW)).Reshape(g.N, g.C, g.OH, g.OW));
    }

    /// <summary>
    /// Average pooling (torch.nn.functional.avg_pool2d, ceil_mode=False) over [N, C, H, W] or [C, H, W]:
    /// each output is the mean of a kernel window over the zero-padded input; with
    /// <paramref name="countIncludePad"/> (PyTorch's default) the padding counts in the divisor.
    /// </summary>
    public static Tensor AvgPool2d(Tensor x, int kernelSize, int? stride = null, int padding = 0, bool countIncludePad = true) =>
        AvgPool2d(x, (kernelSize, kernelSize), stride is int s ? (s, s) : null, (padding, padding), countIncludePad);

    /// <inheritdoc cref="AvgPool2d(Tensor, int, int?, int, bool)"/>
    public static Tensor AvgPool2d(Tensor x, (int H, int W) kernelSize, (int H, int W)? stride = null, (int H, int W) padding = default, bool countIncludePad = true)
    {
        var x4 = PoolInput("AvgPool2d", x);
        var g = PoolGeometry("AvgPool2d", x4, kernelSize, stride ?? kernelSize, padding, (1, 1), countIncludePad);
        var y = AvgPoolCore(x4, g);
        return x.Rank == 3 ? y.Squeeze(0) : y;
    }

    /// <summary>
    /// Adaptive average pooling (torch.nn.functional.adaptive_avg_pool2d) to an output of
    /// <paramref name="outputSize"/>: output row i averages input rows ⌊i·H/OH⌋ to ⌈(i+1)·H/OH⌉ − 1, and
    /// likewise for columns. A null size keeps the input's size in that dimension.
    /// </summary>
    public static Tensor AdaptiveAvgPool2d(Tensor x, (int? H, int? W) outputSize)
    {
        var x4 = PoolInput("AdaptiveAvgPool2d", x);
        int n = x4.Size(0), c = x4.Size(1), h = x4.Size(2), w = x4.Size(3);
        int oh = outputSize.H ?? h, ow = outputSize.W ?? w;
        if (oh <= 0 || ow <= 0)
            throw new ArgumentException($"AdaptiveAvgPool2d: output size must be positive, got ({oh}, {ow}).");
        if (h == 0 || w == 0)
            throw new ShapeException($"AdaptiveAvgPool2d: input {x.Shape} has an empty spatial dimension.");
        var g = new Pool2dGeometry(n, c, h, w, oh, ow, 0, 0, 1, 1, 0, 0, 1, 1, CountIncludePad: false, Adaptive: true);
        var y = AvgPoolCore(x4, g);
        return x.Rank == 3 ? y.Squeeze(0) : y;
    }

    /// <inheritdoc cref="AdaptiveAvgPool2d(Tensor, ValueTuple{int?, int?})"/>
    public static Tensor AdaptiveAvgPool2d(Tensor x, int outputSize) => AdaptiveAvgPool2d(x, (outputSize, outputSize));

    private static Tensor AvgPoolCore(Tensor x4, Pool2dGeometry g)
    {
        var xc = x4.ContiguousData();
        var y = Tensor.Empty([g.N, g.C, g.OH, g.OW], x4.DType, x4.Backend);
        x4.Backend.AvgPool2d(xc.V, y.V, g);
        Engine.Record(y, g.Adaptive ? "AdaptiveAvgPool2d" : "AvgPool2d", new AvgPool2dBackward(x4, g), x4);
        return y;
    }

    /// <summary>The gradient spreads evenly over each window: the adjoint of the pooling, itself a recorded op.</summary>
    private readonly struct AvgPool2dBackward(Tensor x, Pool2dGeometry g) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(AvgPoolAdjoint(dy, g));
    }

    /// <summary>dx = the adjoint of average pooling applied to dy (recorded: its backward is the pooling again).</summary>
    private static Tensor AvgPoolAdjoint(Tensor dy, Pool2dGeometry g)
    {
        var dyc = dy.ContiguousData();
        var dx = Tensor.Empty([g.N, g.C, g.H, g.W], dy.DType, dy.Backend);
        dy.Backend.AvgPool2dBackward(dyc.V, dx.V, g);
        Engine.Record(dx, "AvgPool2dBackward", new AvgPoolAdjointBackward(dy, g), dy);
        return dx;
    }

    private readonly struct AvgPoolAdjointBackward(Tensor dy, Pool2dGeometry g) : IBackward
    {
        public void Backward(Tensor ddx) => dy.AccumulateGrad(AvgPoolCore(ddx, g));
    }

    /// <summary>x as [N, C, H, W] (an unbatched [C, H, W] gains a batch of one), checked to be a float tensor.</summary>
    private static Tensor PoolInput(string op, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (!x.DType.IsFloatingPoint()) throw Dispatch.NotFloat(op, x);
        if (x.Rank is not (3 or 4))
            throw new ShapeException($"{op}: expected a 4-D input [N, C, H, W] or a 3-D input [C, H, W], got {x.Shape}.");
        return x.Rank == 3 ? x.Unsqueeze(0) : x;
    }

    private static Pool2dGeometry PoolGeometry(string op, Tensor x4, (int H, int W) k, (int H, int W) s, (int H, int W) p, (int H, int W) d, bool countIncludePad)
    {
        if (k.H <= 0 || k.W <= 0) throw new ArgumentException($"{op}: kernel size must be positive, got ({k.H}, {k.W}).");
        if (s.H <= 0 || s.W <= 0) throw new ArgumentException($"{op}: stride must be positive, got ({s.H}, {s.W}).");
        if (d.H <= 0 || d.W <= 0) throw new ArgumentException($"{op}: dilation must be positive, got ({d.H}, {d.W}).");
        if (p.H < 0 || p.W < 0 || p.H > k.H / 2 || p.W > k.W / 2)
            throw new ArgumentException($"{op}: padding ({p.H}, {p.W}) must be between 0 and half the kernel size ({k.H}, {k.W}).");
        int n = x4.Size(0), c = x4.Size(1), h = x4.Size(2), w = x4.Size(3);
        int oh = (h + 2 * p.H - d.H * (k.H - 1) - 1) / s.H + 1, ow = (w + 2 * p.W - d.W * (k.W - 1) - 1) / s.W + 1;
        if (h + 2 * p.H - d.H * (k.H - 1) - 1 < 0 || w + 2 * p.W - d.W * (k.W - 1) - 1 < 0)
            throw new ShapeException(
                $"{op}: input {x4.Shape} is too small for kernel ({k.H}, {k.W}) with padding ({p.H}, {p.W}) and dilation ({d.H}, {d.W}): the output would be empty.");
        return new Pool2dGeometry(n, c, h, w, oh, ow, k.H, k.W, s.H, s.W, p.H, p.W, d.H, d.W, countIncludePad, Adaptive: false);
    }
}
