namespace Backprop.NN;

/// <summary>
/// Layer normalization over the last dimension (torch.nn.LayerNorm(n)): each row is shifted to mean 0 and
/// scaled to variance 1, then multiplied by <see cref="Weight"/> (ones at first) and shifted by
/// <see cref="Bias"/> (zeros). One fused op forward and backward (<see cref="Functional.LayerNorm"/>).
/// </summary>
public sealed class LayerNorm : Module
{
    /// <summary>The scale γ [n], or null without an elementwise affine map.</summary>
    public Parameter? Weight { get; private set; }

    /// <summary>The shift β [n], or null.</summary>
    public Parameter? Bias { get; private set; }

    /// <summary>The size of the normalized (last) dimension.</summary>
    public int NormalizedShape { get; }

    /// <summary>Added to the variance before the square root.</summary>
    public double Eps { get; }

    /// <summary>Creates the layer: weight ones and bias zeros (PyTorch's initialization), or neither.</summary>
    public LayerNorm(int normalizedShape, double eps = 1e-5, bool elementwiseAffine = true, bool bias = true, DType dtype = DType.Float32)
    {
        if (normalizedShape <= 0) throw new ArgumentOutOfRangeException(nameof(normalizedShape), normalizedShape, "LayerNorm: the normalized size must be positive.");
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "LayerNorm: eps must be non-negative.");
        NormalizedShape = normalizedShape;
        Eps = eps;
        if (elementwiseAffine)
        {
            Weight = new Parameter(Tensor.Ones([normalizedShape], dtype));
            if (bias) Bias = new Parameter(Tensor.Zeros([normalizedShape], dtype));
        }
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        if (input.Rank == 0 || input.Size(-1) != NormalizedShape)
            throw new ShapeException($"LayerNorm: expected input of shape [..., {NormalizedShape}], got {input.Shape}.");
        return Functional.LayerNorm(input, Weight, Bias, Eps);
    }

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"({NormalizedShape},), eps={Eps}, elementwise_affine={(Weight != null ? "True" : "False")}";
}
