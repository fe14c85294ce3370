namespace Backprop;

/// <summary>
/// A tensor that is a learnable parameter of a module: a leaf that requires grad. Modules find
/// their parameters by this type.
/// </summary>
public sealed class Parameter : Tensor
{
    /// <summary>Wraps the storage of <paramref name="data"/> (no copy) as a parameter.</summary>
    public Parameter(Tensor data, bool requiresGrad = true) : base(data)
    {
        if (!data.DType.IsFloatingPoint())
            throw new ArgumentException($"Parameter: parameters must be floating point, got {data.DType.Name()}.");
        RequiresGrad = requiresGrad;
        _storage.Escaped = true; // parameters live as long as their module, whatever scope created them
    }
}
