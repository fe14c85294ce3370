namespace Backprop.NN;

/// <summary>
/// 2-D convolution layer over [N, C, H, W] (or [C, H, W]) inputs, as torch.nn.Conv2d: weight
/// [out, in/groups, KH, KW] and bias [out] under PyTorch's names and shapes (state dicts
/// interchange), PyTorch's default initialization (Kaiming-uniform with a = √5: U(±1/√fan_in),
/// the bias likewise). Stride, padding (sizes, "same" or "valid"), dilation and groups as in PyTorch.
/// </summary>
public sealed class Conv2d : Module
{
    /// <summary>Weight [outChannels, inChannels/groups, KH, KW].</summary>
    public Parameter Weight { get; private set; }

    /// <summary>Bias [outChannels], or null.</summary>
    public Parameter? Bias { get; private set; }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>Kernel size.</summary>
    public Size2d KernelSize { get; }
    /// <summary>Stride.</summary>
    public Size2d Stride { get; }
    /// <summary>Padding.</summary>
    public ConvPadding Padding { get; }
    /// <summary>Dilation.</summary>
    public Size2d Dilation { get; }
    /// <summary>Groups: input and output channels split into this many independent convolutions.</summary>
    public int Groups { get; }

    /// <summary>Creates the layer; weights use PyTorch's default initialization unless <paramref name="init"/> says otherwise.</summary>
    public Conv2d(int inChannels, int outChannels, Size2d kernelSize, Size2d? stride = null, ConvPadding? padding = null,
        Size2d? dilation = null, int groups = 1, bool bias = true, WeightInit init = WeightInit.Default,
        Generator? generator = null, DType dtype = DType.Float32)
    {
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride ?? 1;
        Padding = padding ?? 0;
        Dilation = dilation ?? 1;
        Groups = groups;
        ConvLayers.Validate("Conv2d", inChannels, outChannels, kernelSize, Stride, Padding, Dilation, groups);
        Weight = new Parameter(Tensor.Zeros([outChannels, inChannels / groups, kernelSize.H, kernelSize.W], dtype));
        Bias = ConvLayers.Initialize(Weight, bias, outChannels, init, generator, dtype);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.Conv2d(input, Weight, Bias, Stride, Padding, Dilation, Groups);

    /// <inheritdoc/>
    protected override string ExtraRepr() => ConvLayers.Repr(InChannels, OutChannels, KernelSize, Stride, Padding, null, Dilation, Groups, Bias != null);
}

/// <summary>
/// 1-D convolution layer over [N, C, L] (or [C, L]) inputs, as torch.nn.Conv1d: weight
/// [out, in/groups, K], bias [out], PyTorch's default initialization.
/// </summary>
public sealed class Conv1d : Module
{
    /// <summary>Weight [outChannels, inChannels/groups, K].</summary>
    public Parameter Weight { get; private set; }

    /// <summary>Bias [outChannels], or null.</summary>
    public Parameter? Bias { get; private set; }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>Kernel size.</summary>
    public int KernelSize { get; }
    /// <summary>Stride.</summary>
    public int Stride { get; }
    /// <summary>Padding (a size, "same" or "valid").</summary>
    public ConvPadding Padding { get; }
    /// <summary>Dilation.</summary>
    public int Dilation { get; }
    /// <summary>Groups.</summary>
    public int Groups { get; }

    /// <summary>Creates the layer; weights use PyTorch's default initialization unless <paramref name="init"/> says otherwise.</summary>
    public Conv1d(int inChannels, int outChannels, int kernelSize, int stride = 1, ConvPadding? padding = null, int dilation = 1,
        int groups = 1, bool bias = true, WeightInit init = WeightInit.Default, Generator? generator = null, DType dtype = DType.Float32)
    {
        var p = padding ?? 0;
        if (!p.IsSame && p.Size.H != p.Size.W) throw new ArgumentException($"Conv1d: padding must be one size, got {p}.");
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = p;
        Dilation = dilation;
        Groups = groups;
        ConvLayers.Validate("Conv1d", inChannels, outChannels, kernelSize, stride, p, dilation, groups);
        Weight = new Parameter(Tensor.Zeros([outChannels, inChannels / groups, kernelSize], dtype));
        Bias = ConvLayers.Initialize(Weight, bias, outChannels, init, generator, dtype);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.Conv1d(input, Weight, Bias, Stride, Padding, Dilation, Groups);

    /// <inheritdoc/>
    protected override string ExtraRepr() => ConvLayers.Repr(InChannels, OutChannels, KernelSize, Stride, Padding, null, Dilation, Groups, Bias != null);
}

/// <summary>
/// 2-D transposed convolution layer, as torch.nn.ConvTranspose2d: weight [in, out/groups, KH, KW]
/// (PyTorch's layout), bias [out], PyTorch's default initialization (fan-in from the weight's
/// second dimension, as PyTorch computes it). Output size
/// (H − 1)·stride − 2·padding + dilation·(KH − 1) + output_padding + 1.
/// </summary>
public sealed class ConvTranspose2d : Module
{
    /// <summary>Weight [inChannels, outChannels/groups, KH, KW].</summary>
    public Parameter Weight { get; private set; }

    /// <summary>Bias [outChannels], or null.</summary>
    public Parameter? Bias { get; private set; }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>Kernel size.</summary>
    public Size2d KernelSize { get; }
    /// <summary>Stride.</summary>
    public Size2d Stride { get; }
    /// <summary>Padding removed from each side of the output.</summary>
    public Size2d Padding { get; }
    /// <summary>Extra size added after the output (to pick among the sizes a strided convolution maps to the same input size).</summary>
    public Size2d OutputPadding { get; }
    /// <summary>Dilation.</summary>
    public Size2d Dilation { get; }
    /// <summary>Groups.</summary>
    public int Groups { get; }

    /// <summary>Creates the layer; weights use PyTorch's default initialization unless <paramref name="init"/> says otherwise.</summary>
    public ConvTranspose2d(int inChannels, int outChannels, Size2d kernelSize, Size2d? stride = null, Size2d? padding = null,
        Size2d? outputPadding = null, int groups = 1, bool bias = true, Size2d? dilation = null, WeightInit init = WeightInit.Default,
        Generator? generator = null, DType dtype = DType.Float32)
    {
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride ?? 1;
        Padding = padding ?? 0;
        OutputPadding = outputPadding ?? 0;
        Dilation = dilation ?? 1;
        Groups = groups;
        ConvLayers.Validate("ConvTranspose2d", inChannels, outChannels, kernelSize, Stride, Padding, Dilation, groups);
        var op = OutputPadding;
        if (op.H < 0 || op.W < 0 || (op.H >= Stride.H && op.H >= Dilation.H) || (op.W >= Stride.W && op.W >= Dilation.W))
            throw new ArgumentException($"ConvTranspose2d: output_padding {op} must be at least 0 and smaller than the stride {Stride} or the dilation {Dilation}.");
        Weight = new Parameter(Tensor.Zeros([inChannels, outChannels / groups, kernelSize.H, kernelSize.W], dtype));
        Bias = ConvLayers.Initialize(Weight, bias, outChannels, init, generator, dtype);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) =>
        Functional.ConvTranspose2d(input, Weight, Bias, Stride, Padding, OutputPadding, Groups, Dilation);

    /// <inheritdoc/>
    protected override string ExtraRepr() => ConvLayers.Repr(InChannels, OutChannels, KernelSize, Stride, Padding, OutputPadding, Dilation, Groups, Bias != null);
}

/// <summary>What the convolution layers share: argument checks, initialization, printing.</summary>
internal static class ConvLayers
{
    public static void Validate(string layer, int inChannels, int outChannels, Size2d kernel, Size2d stride, ConvPadding padding, Size2d dilation, int groups)
    {
        if (inChannels <= 0 || outChannels <= 0)
            throw new ArgumentOutOfRangeException(nameof(inChannels), $"{layer}: channel counts must be positive, got in={inChannels}, out={outChannels}.");
        if (groups < 1) throw new ArgumentOutOfRangeException(nameof(groups), groups, $"{layer}: groups must be at least 1, got {groups}.");
        if (inChannels % groups != 0) throw new ArgumentException($"{layer}: in_channels {inChannels} is not divisible by groups {groups}.");
        if (outChannels % groups != 0) throw new ArgumentException($"{layer}: out_channels {outChannels} is not divisible by groups {groups}.");
        if (kernel.H < 1 || kernel.W < 1) throw new ArgumentException($"{layer}: kernel_size must be at least 1, got {kernel}.");
        if (stride.H < 1 || stride.W < 1) throw new ArgumentException($"{layer}: stride must be at least 1, got {stride}.");
        if (dilation.H < 1 || dilation.W < 1) throw new ArgumentException($"{layer}: dilation must be at least 1, got {dilation}.");
        if (!padding.IsSame && (padding.Size.H < 0 || padding.Size.W < 0)) throw new ArgumentException($"{layer}: padding must be at least 0, got {padding}.");
        if (padding.IsSame && (stride.H != 1 || stride.W != 1)) throw new ArgumentException($"{layer}: padding='same' needs stride 1, got stride {stride}.");
    }

    /// <summary>PyTorch's reset_parameters: Kaiming-uniform (a = √5) weight, bias U(±1/√fan_in); returns the bias parameter.</summary>
    public static Parameter? Initialize(Parameter weight, bool bias, int outChannels, WeightInit init, Generator? generator, DType dtype)
    {
        Init.Apply(weight, init, generator);
        if (!bias) return null;
        var b = new Parameter(Tensor.Zeros([outChannels], dtype));
        int fanIn = Init.Fans(weight).FanIn;
        if (init == WeightInit.Default) Init.Uniform_(b, -1 / Math.Sqrt(fanIn), 1 / Math.Sqrt(fanIn), generator);
        else if (init == WeightInit.StandardNormal) Init.Normal_(b, 0, 1, generator);
        return b;
    }

    private static string Pair(Size2d s) => $"({s.H}, {s.W})";

    public static string Repr(int inC, int outC, Size2d k, Size2d stride, ConvPadding padding, Size2d? outputPadding, Size2d dilation, int groups, bool bias)
    {
        var s = $"{inC}, {outC}, kernel_size={Pair(k)}, stride={Pair(stride)}";
        if (padding.IsSame || padding.Size != new Size2d(0, 0)) s += padding.IsSame ? ", padding=same" : $", padding={Pair(padding.Size)}";
        if (outputPadding is Size2d op && op != new Size2d(0, 0)) s += $", output_padding={Pair(op)}";
        if (dilation != new Size2d(1, 1)) s += $", dilation={Pair(dilation)}";
        if (groups != 1) s += $", groups={groups}";
        if (!bias) s += ", bias=False";
        return s;
    }

    public static string Repr(int inC, int outC, int k, int stride, ConvPadding padding, Size2d? outputPadding, int dilation, int groups, bool bias)
    {
        var s = $"{inC}, {outC}, kernel_size=({k},), stride=({stride},)";
        if (padding.IsSame || padding.Size.W != 0) s += padding.IsSame ? ", padding=same" : $", padding=({padding.Size.W},)";
        if (dilation != 1) s += $", dilation=({dilation},)";
        if (groups != 1) s += $", groups={groups}";
        if (!bias) s += ", bias=False";
        return s;
    }
}
