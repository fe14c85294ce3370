namespace Backprop.Data;

/// <summary>
/// A dataset held in two tensors whose first dimension counts samples: sample i is
/// (inputs[i], targets[i]). Batches are gathered with contiguous row copies.
/// </summary>
public sealed class TensorDataset : Dataset
{
    /// <summary>Wraps <paramref name="inputs"/> and <paramref name="targets"/> (detached; copied only if not contiguous).</summary>
    /// <exception cref="ShapeException">A tensor has no first dimension, or the sample counts differ.</exception>
    public TensorDataset(Tensor inputs, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(targets);
        if (inputs.Rank == 0 || targets.Rank == 0)
            throw new ShapeException(
                $"TensorDataset: inputs {inputs.Shape} and targets {targets.Shape} must both have a first dimension that counts samples (a 0-d tensor has none).");
        if (inputs.Size(0) != targets.Size(0))
            throw new ShapeException(
                $"TensorDataset: inputs have {inputs.Size(0)} samples (shape {inputs.Shape}) but targets have {targets.Size(0)} (shape {targets.Shape}); " +
                "the first dimension counts samples and must be the same.");
        // Detached so that a dataset never drags a graph into training; contiguous so that
        // GetBatch can copy whole rows.
        Inputs = inputs.Detach().ContiguousData();
        Targets = targets.Detach().ContiguousData();
    }

    /// <summary>The inputs, shape [samples, ...].</summary>
    public Tensor Inputs { get; }

    /// <summary>The targets, shape [samples, ...].</summary>
    public Tensor Targets { get; }

    /// <inheritdoc/>
    public override int Count => Inputs._shape[0];

    /// <inheritdoc/>
    public override (Tensor Input, Tensor Target) this[int index]
    {
        get
        {
            CheckIndex(index);
            return (Inputs.Select(0, index), Targets.Select(0, index));
        }
    }

    /// <summary>The samples start..start+count-1 as a new dataset sharing this one's storage.</summary>
    public TensorDataset Subset(int start, int count)
    {
        if (start < 0 || count < 0 || start > Count - count)
            throw new ArgumentOutOfRangeException(nameof(count),
                $"TensorDataset.Subset: samples {start}..{(long)start + count - 1} are not within the {Count} samples of this dataset.");
        return new TensorDataset(Inputs.Narrow(0, start, count), Targets.Narrow(0, start, count)) { ClassNames = ClassNames };
    }

    /// <inheritdoc/>
    public override Batch GetBatch(ReadOnlySpan<int> indices)
    {
        if (indices.IsEmpty)
            throw new ArgumentException("TensorDataset.GetBatch: no indices given; a batch needs at least one sample.", nameof(indices));
        foreach (var i in indices) CheckIndex(i);
        return new Batch(Gather(Inputs, indices), Gather(Targets, indices));
    }

    /// <summary>Rows <paramref name="indices"/> of a contiguous tensor, stacked into a new tensor.</summary>
    internal static Tensor Gather(Tensor source, ReadOnlySpan<int> indices)
    {
        var shape = new int[source.Rank];
        shape[0] = indices.Length;
        for (int d = 1; d < shape.Length; d++) shape[d] = source._shape[d];
        var dst = Tensor.HostEmpty(shape, source.DType);
        int row = source._shape[0] == 0 ? 0 : source.NumElements / source._shape[0];
        switch (source.DType)
        {
            case DType.Float32: GatherRows(source.Span<float>(), dst.Span<float>(), row, indices); break;
            case DType.Float64: GatherRows(source.Span<double>(), dst.Span<double>(), row, indices); break;
            case DType.Bool: GatherRows(source.Span<bool>(), dst.Span<bool>(), row, indices); break;
            default: GatherRows(source.Span<long>(), dst.Span<long>(), row, indices); break;
        }
        return dst;
    }

    private static void GatherRows<T>(ReadOnlySpan<T> src, Span<T> dst, int row, ReadOnlySpan<int> indices)
    {
        // Runs of consecutive indices (every batch of an unshuffled loader) become one block copy.
        int k = 0;
        while (k < indices.Length)
        {
            int start = indices[k], run = 1;
            while (k + run < indices.Length && indices[k + run] == start + run) run++;
            src.Slice(start * row, run * row).CopyTo(dst.Slice(k * row, run * row));
            k += run;
        }
    }
}
