using System.Buffers;

namespace Backprop.Data;

/// <summary>
/// The samples of another dataset at chosen indices, in the order given: sample i is
/// <c>dataset[indices[i]]</c> (PyTorch's <c>torch.utils.data.Subset</c>). Nothing is copied; batches
/// are built by the underlying dataset's <see cref="Dataset.GetBatch"/>, so a subset of a
/// <see cref="TensorDataset"/> keeps its fast row copies.
/// </summary>
public sealed class Subset : Dataset
{
    private readonly int[] _indices;

    /// <summary>Selects <paramref name="indices"/> (each in [0, dataset.Count); repeats are allowed) of <paramref name="dataset"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside the dataset.</exception>
    public Subset(Dataset dataset, IEnumerable<int> indices)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(indices);
        Dataset = dataset;
        _indices = [.. indices];
        int n = dataset.Count;
        for (int i = 0; i < _indices.Length; i++)
            if ((uint)_indices[i] >= (uint)n)
                throw new ArgumentOutOfRangeException(nameof(indices), _indices[i],
                    $"Subset: index {_indices[i]} at position {i} is out of range for a {dataset.GetType().Name} of {n} samples.");
        ClassNames = dataset.ClassNames;
    }

    /// <summary>The dataset the samples come from.</summary>
    public Dataset Dataset { get; }

    /// <summary>The selected indices into <see cref="Dataset"/>, in order.</summary>
    public IReadOnlyList<int> Indices => _indices;

    /// <inheritdoc/>
    public override int Count => _indices.Length;

    /// <inheritdoc/>
    public override (Tensor Input, Tensor Target) this[int index] => Dataset[_indices[CheckIndex(index)]];

    /// <inheritdoc/>
    public override Batch GetBatch(ReadOnlySpan<int> indices)
    {
        if (indices.IsEmpty)
            throw new ArgumentException("Subset.GetBatch: no indices given; a batch needs at least one sample.", nameof(indices));
        // A pooled buffer rather than a field: two loaders (or a prefetching one) may batch from one subset at once.
        var mapped = ArrayPool<int>.Shared.Rent(indices.Length);
        try
        {
            for (int i = 0; i < indices.Length; i++) mapped[i] = _indices[CheckIndex(indices[i])];
            return Dataset.GetBatch(mapped.AsSpan(0, indices.Length));
        }
        finally { ArrayPool<int>.Shared.Return(mapped); }
    }
}
