using Backprop.Autograd;
using Backprop.Backends;

namespace Backprop.NN;

/// <summary>A pair of sizes (height, width) for kernels, strides, dilations and paddings; an int means both.</summary>
public readonly record struct Size2d(int H, int W)
{
    /// <summary>The same size in both directions.</summary>
    public static implicit operator Size2d(int both) => new(both, both);

    /// <summary>(height, width).</summary>
    public static implicit operator Size2d((int H, int W) hw) => new(hw.H, hw.W);

    /// <inheritdoc/>
    public override string ToString() => H == W ? $"{H}" : $"({H}, {W})";
}

/// <summary>
/// A convolution's padding: explicit zeros before and after each spatial dimension (an int or an
/// (h, w) pair), <see cref="Same"/> (the output keeps the input's size; stride 1 only, as in PyTorch;
/// an even kernel pads one more after than before) or <see cref="Valid"/> (none). Strings "same"
/// and "valid" convert too: <c>padding: "same"</c>.
/// </summary>
public readonly struct ConvPadding
{
    /// <summary>Explicit padding (ignored for Same).</summary>
    public Size2d Size { get; }

    /// <summary>True for padding="same".</summary>
    public bool IsSame { get; }

    private ConvPadding(Size2d size, bool same)
    {
        Size = size;
        IsSame = same;
    }

    /// <summary>Pads so the output has the input's size (stride 1 only).</summary>
    public static ConvPadding Same => new(0, true);

    /// <summary>No padding.</summary>
    public static ConvPadding Valid => new(0, false);

    /// <summary>The same padding on every side.</summary>
    public static implicit operator ConvPadding(int both) => new(both, false);

    /// <summary>(height, width) padding.</summary>
    public static implicit operator ConvPadding((int H, int W) hw) => new(hw, false);

    /// <summary>An explicit size.</summary>
    public static implicit operator ConvPadding(Size2d size) => new(size, false);

    /// <summary>"same" or "valid" (as PyTorch's padding strings).</summary>
    public static implicit operator ConvPadding(string mode) => mode switch
    {
        "same" => Same,
        "valid" => Valid,
        _ => throw new ArgumentException($"Conv: padding must be a size, \"same\" or \"valid\", got \"{mode}\"."),
    };

    /// <inheritdoc/>
    public override string ToString() => IsSame ? "same" : Size.ToString();
}

public static partial class Functional
{
    /// <summary>
    /// 2-D convolution (cross-correlation, as torch.nn.functional.conv2d) of x [N, C, H, W] (or
    /// unbatched [C, H, W]) with weight [O, C/groups, KH, KW] and an optional bias [O], giving
    /// [N, O, OH, OW] with OH = ⌊(H + padding − dilation·(KH − 1) − 1)/stride⌋ + 1. Computed as im2col
    /// + the packed GEMM (see docs/performance.md). Backward: the input's gradient is a transposed
    /// convolution of dy, the weight's a convolution of the input with dy, the bias's Σ dy; all three
    /// are differentiable again.
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, Size2d? stride = null, ConvPadding? padding = null,
        Size2d? dilation = null, int groups = 1)
    {
        if (x.Rank == 3) return Conv2d(x.Unsqueeze(0), weight, bias, stride, padding, dilation, groups).Squeeze(0);
        var g = ConvShapes.Conv("Conv2d", x, weight, bias, stride ?? 1, padding ?? 0, dilation ?? 1, groups);
        return ConvOp.Apply(ConvOp.Kind.Forward, x, weight, bias, g);
    }

    /// <summary>
    /// 1-D convolution (as torch.nn.functional.conv1d) of x [N, C, L] (or unbatched [C, L]) with
    /// weight [O, C/groups, K] and an optional bias [O], giving [N, O, L_out]: the 2-D convolution of
    /// x seen as [N, C, 1, L].
    /// </summary>
    public static Tensor Conv1d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, ConvPadding? padding = null,
        int dilation = 1, int groups = 1)
    {
        if (x.Rank == 2) return Conv1d(x.Unsqueeze(0), weight, bias, stride, padding, dilation, groups).Squeeze(0);
        if (x.Rank != 3) throw new ShapeException($"Conv1d: expected a 3-D input [N, C, L] (or 2-D [C, L]), got {x.Shape}.");
        if (weight.Rank != 3) throw new ShapeException($"Conv1d: weight must be 3-D [out_channels, in_channels/groups, kernel], got {weight.Shape}.");
        var p = padding ?? 0;
        if (!p.IsSame && p.Size.H != p.Size.W) throw new ArgumentException($"Conv1d: padding must be one size, got {p}.");
        var pad = p.IsSame ? ConvPadding.Same : (ConvPadding)(0, p.Size.W);
        var x4 = x.Unsqueeze(2);
        var w4 = weight.Unsqueeze(2);
        var g = ConvShapes.Conv("Conv1d", x4, w4, bias, (1, stride), pad, (1, dilation), groups);
        return ConvOp.Apply(ConvOp.Kind.Forward, x4, w4, bias, g).Squeeze(2);
    }

    /// <summary>
    /// 2-D transposed convolution (as torch.nn.functional.conv_transpose2d): the gradient of a
    /// convolution with respect to its input. x [N, C_in, H, W] (or [C_in, H, W]), weight
    /// [C_in, C_out/groups, KH, KW], bias [C_out]; output [N, C_out, H_out, W_out] with
    /// H_out = (H − 1)·stride − 2·padding + dilation·(KH − 1) + output_padding + 1.
    /// </summary>
    public static Tensor ConvTranspose2d(Tensor x, Tensor weight, Tensor? bias = null, Size2d? stride = null, Size2d? padding = null,
        Size2d? outputPadding = null, int groups = 1, Size2d? dilation = null)
    {
        if (x.Rank == 3) return ConvTranspose2d(x.Unsqueeze(0), weight, bias, stride, padding, outputPadding, groups, dilation).Squeeze(0);
        var g = ConvShapes.Transpose("ConvTranspose2d", x, weight, bias, stride ?? 1, padding ?? 0, outputPadding ?? 0, dilation ?? 1, groups);
        return ConvOp.Apply(ConvOp.Kind.Input, x, weight, bias, g);
    }
}

/// <summary>Argument checks and output sizes of the convolutions: one-line errors naming the layer and the sizes.</summary>
internal static class ConvShapes
{
    private static void CheckCommon(string op, Tensor x, Tensor w, Tensor? bias, int groups, int biasSize)
    {
        if (x.Rank != 4) throw new ShapeException($"{op}: expected a 4-D input [N, C, H, W] (or 3-D [C, H, W]), got {x.Shape}.");
        if (w.Rank != 4) throw new ShapeException($"{op}: weight must be 4-D, got {w.Shape}.");
        if (!x.DType.IsFloatingPoint()) throw Dispatch.NotFloat(op, x);
        if (x.DType != w.DType || (bias != null && bias.DType != w.DType))
            throw new ArgumentException($"{op}: dtypes differ: input {x.DType.Name()}, weight {w.DType.Name()}{(bias != null ? $", bias {bias.DType.Name()}" : "")}.");
        Dispatch.BackendOf(op, x, w);
        if (bias != null) Dispatch.BackendOf(op, x, bias);
        if (groups < 1) throw new ArgumentOutOfRangeException(nameof(groups), groups, $"{op}: groups must be at least 1, got {groups}.");
        if (bias != null && (bias.Rank != 1 || bias.Size(0) != biasSize))
            throw new ShapeException($"{op}: bias must have shape [{biasSize}], got {bias.Shape}.");
    }

    private static void Positive(string op, string what, Size2d s, int min)
    {
        if (s.H < min || s.W < min) throw new ArgumentException($"{op}: {what} must be at least {min}, got {s}.");
    }

    /// <summary>The geometry of conv(x, w): checks channels, groups, stride, padding, dilation and that the kernel fits.</summary>
    public static ConvGeometry Conv(string op, Tensor x, Tensor w, Tensor? bias, Size2d stride, ConvPadding padding, Size2d dilation, int groups)
    {
        CheckCommon(op, x, w, bias, groups, w.Rank == 4 ? w.Size(0) : 0);
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), wd = x.Size(3);
        int o = w.Size(0), kh = w.Size(2), kw = w.Size(3);
        if (o % groups != 0)
            throw new ShapeException($"{op}: out_channels {o} (weight {w.Shape}) is not divisible by groups {groups}.");
        if (c % groups != 0)
            throw new ShapeException($"{op}: in_channels {c} (input {x.Shape}) is not divisible by groups {groups}.");
        if (w.Size(1) * groups != c)
            throw new ShapeException($"{op}: input {x.Shape} has {c} channels, but weight {w.Shape} with groups={groups} expects {w.Size(1) * groups}.");
        if (kh < 1 || kw < 1) throw new ShapeException($"{op}: the kernel must be at least 1x1, got weight {w.Shape}.");
        Positive(op, "stride", stride, 1);
        Positive(op, "dilation", dilation, 1);
        int ekh = dilation.H * (kh - 1) + 1, ekw = dilation.W * (kw - 1) + 1;
        int ph, pw, phAfter, pwAfter;
        if (padding.IsSame)
        {
            if (stride.H != 1 || stride.W != 1) throw new ArgumentException($"{op}: padding='same' needs stride 1, got stride {stride}.");
            // as PyTorch: the total d·(k − 1), the odd one extra after
            ph = (ekh - 1) / 2; phAfter = ekh - 1 - ph;
            pw = (ekw - 1) / 2; pwAfter = ekw - 1 - pw;
        }
        else
        {
            Positive(op, "padding", padding.Size, 0);
            (ph, pw) = (padding.Size.H, padding.Size.W);
            (phAfter, pwAfter) = (ph, pw);
        }
        int paddedH = h + ph + phAfter, paddedW = wd + pw + pwAfter;
        if (ekh > paddedH || ekw > paddedW)
            throw new ShapeException($"{op}: kernel {kh}x{kw} (dilation {dilation.H}x{dilation.W}: {ekh}x{ekw} effective) is larger than the padded input " +
                $"{paddedH}x{paddedW} (input {x.Shape}, padding {padding}).");
        int oh = (paddedH - ekh) / stride.H + 1, ow = (paddedW - ekw) / stride.W + 1;
        return new ConvGeometry(n, c, h, wd, o, kh, kw, oh, ow, stride.H, stride.W, ph, pw, dilation.H, dilation.W, groups);
    }

    /// <summary>The geometry of the convolution whose input gradient conv_transpose(x, w) is.</summary>
    public static ConvGeometry Transpose(string op, Tensor x, Tensor w, Tensor? bias, Size2d stride, Size2d padding, Size2d outputPadding,
        Size2d dilation, int groups)
    {
        CheckCommon(op, x, w, bias, groups, w.Rank == 4 ? w.Size(1) * groups : 0);
        int n = x.Size(0), cin = x.Size(1), hin = x.Size(2), win = x.Size(3);
        int kh = w.Size(2), kw = w.Size(3);
        if (w.Size(0) != cin)
            throw new ShapeException($"{op}: input {x.Shape} has {cin} channels, but weight {w.Shape} expects {w.Size(0)} (weight is [in_channels, out_channels/groups, KH, KW]).");
        if (cin % groups != 0)
            throw new ShapeException($"{op}: in_channels {cin} (input {x.Shape}) is not divisible by groups {groups}.");
        if (kh < 1 || kw < 1) throw new ShapeException($"{op}: the kernel must be at least 1x1, got weight {w.Shape}.");
        Positive(op, "stride", stride, 1);
        Positive(op, "dilation", dilation, 1);
        Positive(op, "padding", padding, 0);
        Positive(op, "output_padding", outputPadding, 0);
        if ((outputPadding.H >= stride.H && outputPadding.H >= dilation.H) || (outputPadding.W >= stride.W && outputPadding.W >= dilation.W))
            throw new ArgumentException($"{op}: output_padding {outputPadding} must be smaller than the stride {stride} or the dilation {dilation}.");
        int cout = w.Size(1) * groups;
        int h = (hin - 1) * stride.H - 2 * padding.H + dilation.H * (kh - 1) + outputPadding.H + 1;
        int wd = (win - 1) * stride.W - 2 * padding.W + dilation.W * (kw - 1) + outputPadding.W + 1;
        if (h < 1 || wd < 1)
            throw new ShapeException($"{op}: the output would be {h}x{wd} for input {x.Shape}, kernel {kh}x{kw}, stride {stride}, padding {padding}, dilation {dilation}; it must be at least 1x1.");
        return new ConvGeometry(n, cout, h, wd, cin, kh, kw, hin, win, stride.H, stride.W, padding.H, padding.W, dilation.H, dilation.W, groups);
    }
}

/// <summary>
/// The three directions of one convolution geometry as differentiable ops, closed under
/// differentiation: Forward(x, w) = y, Input(dy, w) = dx (the transposed convolution), Weight(x, dy) = dw.
/// Each is bilinear, and the adjoint of each in either argument is one of the other two, so the
/// backward of any of them (fused or recorded) is made of these three and second derivatives work.
/// </summary>
internal static class ConvOp
{
    public enum Kind : byte { Forward, Input, Weight }

    private static string Name(Kind k) => k switch { Kind.Forward => "Conv2d", Kind.Input => "ConvTranspose2d", _ => "Conv2dWeightGrad" };

    /// <summary>
    /// Forward: a = x, b = w, bias over O. Input: a = dy [N, O, OH, OW], b = w, output [N, C, H, W],
    /// bias over C. Weight: a = x, b = dy, output [O, C/G, KH, KW] (no bias).
    /// </summary>
    public static Tensor Apply(Kind kind, Tensor a, Tensor b, Tensor? bias, in ConvGeometry g)
    {
        var ac = a.ContiguousData();
        if (!ReferenceEquals(ac, a)) ac.MarkScratch();
        var bc = b.ContiguousData();
        if (!ReferenceEquals(bc, b)) bc.MarkScratch();
        var backend = a.Backend;
        Tensor y;
        switch (kind)
        {
            case Kind.Forward:
                y = Tensor.Empty(ShapeCache.Intern([g.N, g.O, g.OH, g.OW]), a.DType, backend);
                backend.ConvForward(ac.V, bc.V, bias?.ContiguousData().V ?? default, bias != null, y.V, g);
                break;
            case Kind.Input:
                y = Tensor.Empty(ShapeCache.Intern([g.N, g.C, g.H, g.W]), a.DType, backend);
                backend.ConvBackwardInput(ac.V, bc.V, y.V, g);
                if (bias != null) backend.Binary(BinaryOp.Add, y.V, bias.Reshape(1, g.C, 1, 1).V, y.V);
                break;
            default:
                y = Tensor.Empty(ShapeCache.Intern([g.O, g.Cg, g.KH, g.KW]), a.DType, backend);
                backend.ConvBackwardWeight(ac.V, bc.V, y.V, g, accumulate: false);
                break;
        }
        Engine.Record(y, Name(kind), new ConvBackward(kind, a, b, bias, ac, bc, g), a, b, bias, saved0: ac, saved1: bc);
        return y;
    }

    /// <summary>
    /// With upstream gradient d (the output's shape): Forward → da = Input(d, b), db = Weight(a, d);
    /// Input → da = Forward(d, b), db = Weight(d, a); Weight → da = Input(b, d), db = Forward(a, d);
    /// the bias (Forward, Input) gets Σ d over samples and positions.
    /// </summary>
    private readonly struct ConvBackward(Kind kind, Tensor a, Tensor b, Tensor? bias, Tensor ac, Tensor bc, ConvGeometry g) : IBackward
    {
        public void Backward(Tensor d)
        {
            bool graph = Engine.CreateGraph;
            // the fused path reads the contiguous copies; the recorded one the inputs themselves (their graph)
            var A = graph ? a : ac;
            var B = graph ? b : bc;
            switch (kind)
            {
                case Kind.Forward:
                    if (a.RequiresGrad) a.AccumulateGrad(Apply(Kind.Input, d, B, null, g));
                    if (b.RequiresGrad)
                    {
                        var target = graph ? null : Engine.LeafGradTarget(b);
                        if (target != null)
                        {
                            // straight into the weight's Grad
                            b.Backend.ConvBackwardWeight(ac.V, d.ContiguousData().V, target.V, g, accumulate: true);
                            target.BumpVersion();
                        }
                        else b.AccumulateGrad(Apply(Kind.Weight, A, d, null, g));
                    }
                    break;
                case Kind.Input:
                    if (a.RequiresGrad) a.AccumulateGrad(Apply(Kind.Forward, d, B, null, g));
                    if (b.RequiresGrad)
                    {
                        var target = graph ? null : Engine.LeafGradTarget(b);
                        if (target != null)
                        {
                            b.Backend.ConvBackwardWeight(d.ContiguousData().V, ac.V, target.V, g, accumulate: true);
                            target.BumpVersion();
                        }
                        else b.AccumulateGrad(Apply(Kind.Weight, d, A, null, g));
                    }
                    break;
                default:
                    if (a.RequiresGrad) a.AccumulateGrad(Apply(Kind.Input, B, d, null, g));
                    if (b.RequiresGrad) b.AccumulateGrad(Apply(Kind.Forward, A, d, null, g));
                    break;
            }
            if (bias != null && bias.RequiresGrad)
            {
                var target = graph ? null : Engine.LeafGradTarget(bias);
                if (target != null)
                {
                    bias.Backend.Sum(d.V, target.Reshape(1, bias.Size(0), 1, 1).V, accumulate: true);
                    target.BumpVersion();
                }
                else bias.AccumulateGrad(d.Sum([0, 2, 3]));
            }
        }
    }
}
