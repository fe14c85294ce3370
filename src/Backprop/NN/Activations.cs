namespace Backprop.NN;

/// <summary>tanh as a module.</summary>
public sealed class Tanh : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input.Tanh();
}

/// <summary>Logistic sigmoid as a module.</summary>
public sealed class Sigmoid : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input.Sigmoid();
}

/// <summary>max(x, 0) as a module.</summary>
public sealed class Relu : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input.Relu();
}

/// <summary>Leaky ReLU as a module.</summary>
public sealed class LeakyRelu(double negativeSlope = 0.01) : Module
{
    /// <summary>Slope for negative inputs.</summary>
    public double NegativeSlope { get; } = negativeSlope;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input.LeakyRelu(NegativeSlope);

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"negative_slope={NegativeSlope}";
}

/// <summary>GELU as a module (exact erf form unless approximateTanh).</summary>
public sealed class Gelu(bool approximateTanh = false) : Module
{
    /// <summary>Whether the tanh approximation is used.</summary>
    public bool ApproximateTanh { get; } = approximateTanh;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input.Gelu(ApproximateTanh);
}

/// <summary>Softplus as a module.</summary>
public sealed class Softplus(double beta = 1, double threshold = 20) : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input.Softplus(beta, threshold);
}

/// <summary>Softmax along a dimension as a module.</summary>
public sealed class Softmax(int dim = -1) : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input.Softmax(dim);
}

/// <summary>Log-softmax along a dimension as a module.</summary>
public sealed class LogSoftmax(int dim = -1) : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input.LogSoftmax(dim);
}

/// <summary>Returns its input.</summary>
public sealed class Identity : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input;
}

/// <summary>Flattens dimensions startDim..endDim (by default all but the batch dimension).</summary>
public sealed class Flatten(int startDim = 1, int endDim = -1) : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input.Flatten(startDim, endDim);
}

/// <summary>Activation functions by name, for command lines and configuration.</summary>
public static class Activation
{
    /// <summary>Names accepted by <see cref="Create"/>.</summary>
    public static readonly string[] Names = ["sigmoid", "tanh", "relu", "leaky-relu", "gelu", "softplus", "identity"];

    /// <summary>The activation module with the given name (case-insensitive).</summary>
    public static Module Create(string name) => name.ToLowerInvariant() switch
    {
        "sigmoid" => new Sigmoid(),
        "tanh" => new Tanh(),
        "relu" => new Relu(),
        "leaky-relu" or "leakyrelu" or "leaky_relu" => new LeakyRelu(),
        "gelu" => new Gelu(),
        "softplus" => new Softplus(),
        "identity" or "linear" or "none" => new Identity(),
        _ => throw new ArgumentException($"unknown activation '{name}'; expected one of: {string.Join(", ", Names)}."),
    };
}
