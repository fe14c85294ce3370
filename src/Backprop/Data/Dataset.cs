namespace Backprop.Data;

/// <summary>
/// A finite, indexable collection of (input, target) samples. Subclasses implement
/// <see cref="Count"/> and the indexer; those that store samples contiguously override
/// <see cref="GetBatch"/> to build a batch without per-sample tensors.
/// </summary>
public abstract partial class Dataset
{
    /// <summary>Number of samples.</summary>
    public abstract int Count { get; }

    /// <summary>The sample at <paramref name="index"/> (0 ≤ index &lt; <see cref="Count"/>).</summary>
    public abstract (Tensor Input, Tensor Target) this[int index] { get; }

    /// <summary>Names of the target classes (index = class id), where the dataset has them.</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>
    /// The samples at <paramref name="indices"/> stacked into one batch. The default gathers the
    /// samples one by one, so every sample must have the same input shape and dtype, and the same
    /// target shape and dtype.
    /// </summary>
    public virtual Batch GetBatch(ReadOnlySpan<int> indices)
    {
        if (indices.IsEmpty)
            throw new ArgumentException($"{GetType().Name}.GetBatch: no indices given; a batch needs at least one sample.", nameof(indices));
        var (x0, y0) = this[CheckIndex(indices[0])];
        var x = Tensor.HostEmpty(BatchShape(indices.Length, x0), x0.DType);
        var y = Tensor.HostEmpty(BatchShape(indices.Length, y0), y0.DType);
        for (int i = 0; i < indices.Length; i++)
        {
            var (xi, yi) = i == 0 ? (x0, y0) : this[CheckIndex(indices[i])];
            CheckSameLayout("input", xi, x0, indices[i], indices[0]);
            CheckSameLayout("target", yi, y0, indices[i], indices[0]);
            CopyRow(xi, x, i);
            CopyRow(yi, y, i);
        }
        return new Batch(x, y);
    }

    /// <summary>Validates a sample index, naming the dataset and its size.</summary>
    protected int CheckIndex(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), index,
                $"{GetType().Name}: sample index {index} is out of range for a dataset of {Count} samples.");
        return index;
    }

    /// <summary>[batch, ...sample shape].</summary>
    internal static int[] BatchShape(int batch, Tensor sample)
    {
        var shape = new int[sample.Rank + 1];
        shape[0] = batch;
        for (int d = 0; d < sample.Rank; d++) shape[d + 1] = sample._shape[d];
        return shape;
    }

    private void CheckSameLayout(string what, Tensor t, Tensor first, int index, int firstIndex)
    {
        if (t.DType != first.DType || !t._shape.AsSpan().SequenceEqual(first._shape))
            throw new ShapeException(
                $"{GetType().Name}.GetBatch: sample {index} has {what} {t.DType.Name()} {t.Shape} but sample {firstIndex} has {first.DType.Name()} {first.Shape}; " +
                "samples stacked into one batch must share shape and dtype.");
    }

    /// <summary>Copies all of <paramref name="src"/> into row <paramref name="row"/> of the contiguous <paramref name="dst"/>.</summary>
    internal static void CopyRow(Tensor src, Tensor dst, int row)
    {
        var s = src.ContiguousData();
        int n = s.NumElements;
        switch (dst.DType)
        {
            case DType.Float32: s.Span<float>().CopyTo(dst.Span<float>().Slice(row * n, n)); break;
            case DType.Float64: s.Span<double>().CopyTo(dst.Span<double>().Slice(row * n, n)); break;
            case DType.Bool: s.Span<bool>().CopyTo(dst.Span<bool>().Slice(row * n, n)); break;
            default: s.Span<long>().CopyTo(dst.Span<long>().Slice(row * n, n)); break;
        }
    }
}
