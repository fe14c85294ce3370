namespace Backprop;

/// <summary>The flat buffer behind one or more tensors (views share it).</summary>
internal abstract class Storage
{
    /// <summary>Incremented by every in-place write, so backward can detect a saved tensor that changed.</summary>
    public int Version;

    public abstract DType DType { get; }
    public abstract int Length { get; }
    public abstract Array Array { get; }
}

/// <summary>A typed flat buffer.</summary>
internal sealed class Storage<T> : Storage where T : unmanaged
{
    public readonly T[] Data;

    public Storage(T[] data) => Data = data;

    public Storage(int length) => Data = length == 0 ? [] : new T[length];

    public override DType DType => DTypeExtensions.Of<T>();
    public override int Length => Data.Length;
    public override Array Array => Data;
}
