namespace Backprop.NN;

/// <summary>
/// Max pooling over [N, C, H, W] (or [C, H, W]) as in torch.nn.MaxPool2d (ceil_mode=False): the
/// largest value of each kernel window. Stride defaults to the kernel size. No parameters.
/// </summary>
public sealed class MaxPool2d : Module
{
    /// <summary>Creates the layer with square windows.</summary>
    public MaxPool2d(int kernelSize, int? stride = null, int padding = 0, int dilation = 1)
        : this((kernelSize, kernelSize), stride is int s ? (s, s) : null, (padding, padding), (dilation, dilation)) { }

    /// <summary>Creates the layer.</summary>
    public MaxPool2d((int H, int W) kernelSize, (int H, int W)? stride = null, (int H, int W) padding = default, (int H, int W)? dilation = null)
    {
        KernelSize = kernelSize;
        Stride = stride ?? kernelSize;
        Padding = padding;
        Dilation = dilation ?? (1, 1);
        // checks the settings now rather than at the first forward
        if (kernelSize.H <= 0 || kernelSize.W <= 0 || Stride.H <= 0 || Stride.W <= 0 || Dilation.H <= 0 || Dilation.W <= 0 ||
            padding.H < 0 || padding.W < 0 || padding.H > kernelSize.H / 2 || padding.W > kernelSize.W / 2)
            throw new ArgumentException($"MaxPool2d: invalid settings kernel={kernelSize}, stride={Stride}, padding={padding}, dilation={Dilation}: " +
                "sizes must be positive and padding at most half the kernel.");
    }

    /// <summary>Window size.</summary>
    public (int H, int W) KernelSize { get; }
    /// <summary>Step between windows.</summary>
    public (int H, int W) Stride { get; }
    /// <summary>Implicit −∞ padding on each side.</summary>
    public (int H, int W) Padding { get; }
    /// <summary>Distance between window taps.</summary>
    public (int H, int W) Dilation { get; }

    /// <summary>Whether the windows tile the input: stride = kernel, no padding or dilation.</summary>
    internal bool Tiles => Stride == KernelSize && Padding == (0, 0) && Dilation == (1, 1);

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.MaxPool2d(input, KernelSize, Stride, Padding, Dilation);

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"kernel_size={KernelSize}, stride={Stride}, padding={Padding}, dilation={Dilation}";
}

/// <summary>
/// Average pooling over [N, C, H, W] (or [C, H, W]) as in torch.nn.AvgPool2d (ceil_mode=False): the
/// mean of each kernel window over the zero-padded input. No parameters.
/// </summary>
public sealed class AvgPool2d : Module
{
    /// <summary>Creates the layer with square windows.</summary>
    public AvgPool2d(int kernelSize, int? stride = null, int padding = 0, bool countIncludePad = true)
        : this((kernelSize, kernelSize), stride is int s ? (s, s) : null, (padding, padding), countIncludePad) { }

    /// <summary>Creates the layer.</summary>
    public AvgPool2d((int H, int W) kernelSize, (int H, int W)? stride = null, (int H, int W) padding = default, bool countIncludePad = true)
    {
        KernelSize = kernelSize;
        Stride = stride ?? kernelSize;
        Padding = padding;
        CountIncludePad = countIncludePad;
        if (kernelSize.H <= 0 || kernelSize.W <= 0 || Stride.H <= 0 || Stride.W <= 0 ||
            padding.H < 0 || padding.W < 0 || padding.H > kernelSize.H / 2 || padding.W > kernelSize.W / 2)
            throw new ArgumentException($"AvgPool2d: invalid settings kernel={kernelSize}, stride={Stride}, padding={padding}: " +
                "sizes must be positive and padding at most half the kernel.");
    }

    /// <summary>Window size.</summary>
    public (int H, int W) KernelSize { get; }
    /// <summary>Step between windows.</summary>
    public (int H, int W) Stride { get; }
    /// <summary>Implicit zero padding on each side.</summary>
    public (int H, int W) Padding { get; }
    /// <summary>Whether padded positions count in the divisor (PyTorch's default).</summary>
    public bool CountIncludePad { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.AvgPool2d(input, KernelSize, Stride, Padding, CountIncludePad);

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"kernel_size={KernelSize}, stride={Stride}, padding={Padding}";
}

/// <summary>
/// Adaptive average pooling to a fixed output size whatever the input's (torch.nn.AdaptiveAvgPool2d);
/// <c>new AdaptiveAvgPool2d(1)</c> is global average pooling. No parameters.
/// </summary>
public sealed class AdaptiveAvgPool2d((int? H, int? W) outputSize) : Module
{
    /// <summary>A square output size.</summary>
    public AdaptiveAvgPool2d(int outputSize) : this((outputSize, outputSize)) { }

    /// <summary>The output's spatial size (null: the input's).</summary>
    public (int? H, int? W) OutputSize { get; } = outputSize;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.AdaptiveAvgPool2d(input, OutputSize);

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"output_size=({OutputSize.H?.ToString() ?? "None"}, {OutputSize.W?.ToString() ?? "None"})";
}
