namespace Backprop;

public partial class Tensor
{
    /// <summary>
    /// Copies the elements, in row-major order, into <paramref name="destination"/> (of exactly
    /// <see cref="NumElements"/> elements of the tensor's own element type), without allocating: the
    /// host copy that communication libraries (MPI) and other native buffers need.
    /// </summary>
    public void CopyToHost<T>(Span<T> destination) where T : unmanaged
    {
        CheckHostSpan<T>("CopyToHost", destination.Length);
        Backend.Download(V, destination);
    }

    /// <summary>
    /// Overwrites the elements, in row-major order, with <paramref name="source"/> (exactly
    /// <see cref="NumElements"/> elements of the tensor's own element type); the tensor must be
    /// contiguous. In-place like <see cref="CopyFrom(Tensor)"/>: not recorded, and refused on a leaf
    /// that requires grad while gradients are recorded.
    /// </summary>
    public Tensor CopyFromHost<T>(ReadOnlySpan<T> source) where T : unmanaged
    {
        CheckWritable("CopyFromHost");
        CheckHostSpan<T>("CopyFromHost", source.Length);
        if (!IsContiguous)
            throw new InvalidOperationException($"CopyFromHost: the tensor of shape {Shape} is not contiguous; copy into Contiguous() and CopyFrom that.");
        Backend.Upload(source, V);
        BumpVersion();
        return AfterInPlace("CopyFromHost");
    }

    private void CheckHostSpan<T>(string op, int length) where T : unmanaged
    {
        var want = typeof(T) == typeof(float) ? DType.Float32 : typeof(T) == typeof(double) ? DType.Float64 : typeof(T) == typeof(long) ? DType.Int64
            : throw new ArgumentException($"{op}: element type {typeof(T).Name} is not a tensor element type (float, double, long).");
        if (want != DType)
            throw new ArgumentException($"{op}: the tensor holds {DType.Name()}, the span {want.Name()}; convert with To(DType) first.");
        if (length != _numel)
            throw new ArgumentException($"{op}: the span has {length} elements, the tensor of shape {Shape} {_numel}.");
    }
}
