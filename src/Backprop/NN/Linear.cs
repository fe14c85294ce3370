namespace Backprop.NN;

/// <summary>
/// Fully connected layer y = x·Wᵀ + b with weight [out, in] and bias [out] (PyTorch's layout, so
/// state dicts interchange). Input [..., in], output [..., out]. Forward and backward are one fused op
/// (<see cref="Functional.Linear(Tensor, Tensor, Tensor?)"/>): dX = dY·W, dW = dYᵀ·X, db = Σ dY.
/// </summary>
public sealed class Linear : Module
{
    /// <summary>Weight of shape [outFeatures, inFeatures].</summary>
    public Parameter Weight { get; private set; }

    /// <summary>Bias of shape [outFeatures], or null.</summary>
    public Parameter? Bias { get; private set; }

    /// <summary>Input size.</summary>
    public int InFeatures { get; }

    /// <summary>Output size.</summary>
    public int OutFeatures { get; }

    /// <summary>Creates the layer; weights use PyTorch's default initialization unless <paramref name="init"/> says otherwise.</summary>
    public Linear(int inFeatures, int outFeatures, bool bias = true, WeightInit init = WeightInit.Default,
        Generator? generator = null, DType dtype = DType.Float32)
    {
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentOutOfRangeException(nameof(inFeatures), $"Linear: sizes must be positive, got in={inFeatures}, out={outFeatures}.");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = new Parameter(Tensor.Zeros([outFeatures, inFeatures], dtype));
        Init.Apply(Weight, init, generator);
        if (bias)
        {
            Bias = new Parameter(Tensor.Zeros([outFeatures], dtype));
            if (init == WeightInit.Default) Init.Uniform_(Bias, -1 / Math.Sqrt(inFeatures), 1 / Math.Sqrt(inFeatures), generator);
            else if (init == WeightInit.StandardNormal) Init.Normal_(Bias, 0, 1, generator);
        }
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Forward(input, FusedActivation.None);

    /// <summary>act(x·Wᵀ + b) in one fused op.</summary>
    public Tensor Forward(Tensor input, FusedActivation activation)
    {
        if (input.Rank == 0 || input.Size(-1) != InFeatures)
            throw new ShapeException($"Linear: expected input of shape [..., {InFeatures}], got {input.Shape}.");
        return Functional.Linear(input, Weight, Bias, activation);
    }

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"in={InFeatures}, out={OutFeatures}, bias={(Bias != null ? "True" : "False")}";
}
