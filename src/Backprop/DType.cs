namespace Backprop;

/// <summary>Element type of a tensor.</summary>
public enum DType
{
    /// <summary>32-bit IEEE float, the default for data and parameters.</summary>
    Float32,
    /// <summary>64-bit IEEE float, for gradient checking and reference computations.</summary>
    Float64,
    /// <summary>64-bit signed integer, for class indices, gather indices and argmax results.</summary>
    Int64,
    /// <summary>
    /// Boolean, one byte per element: what comparisons (<c>a &gt; 0</c>, <c>Eq</c>) and logical ops return, and what
    /// <c>Where</c>, <c>MaskedFill</c> and mask indexing take. Never requires grad.
    /// </summary>
    Bool,
}

/// <summary>Helpers for <see cref="DType"/>.</summary>
public static class DTypeExtensions
{
    /// <summary>The PyTorch-style name: float32, float64, int64, bool.</summary>
    public static string Name(this DType t) => t switch
    {
        DType.Float32 => "float32",
        DType.Float64 => "float64",
        DType.Int64 => "int64",
        DType.Bool => "bool",
        _ => t.ToString(),
    };

    /// <summary>Bytes per element.</summary>
    public static int ElementSize(this DType t) => t switch
    {
        DType.Float32 => 4,
        DType.Bool => 1,
        _ => 8,
    };

    /// <summary>True for Float32 and Float64.</summary>
    public static bool IsFloatingPoint(this DType t) => t is DType.Float32 or DType.Float64;

    internal static DType Of<T>() =>
        typeof(T) == typeof(float) ? DType.Float32 :
        typeof(T) == typeof(double) ? DType.Float64 :
        typeof(T) == typeof(long) ? DType.Int64 :
        typeof(T) == typeof(bool) ? DType.Bool :
        throw new NotSupportedException($"No tensor dtype for element type {typeof(T).Name}.");
}
