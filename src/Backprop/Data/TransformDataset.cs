namespace Backprop.Data;

/// <summary>
/// Another dataset with a function applied to each sample as it is read (torchvision's
/// <c>transform</c> and <c>target_transform</c>): normalization, reshaping, augmentation, label
/// remapping. The source is not changed and nothing is precomputed; batches stack the transformed
/// samples, which must share shape and dtype.
/// </summary>
/// <remarks>
/// The transform runs on the thread that builds the batch: the loader's background thread when it
/// prefetches. It sees the samples in the same order either way, so a transform that draws from its
/// own <see cref="Generator"/> gives the same augmentations with and without prefetching; a generator
/// shared with the training loop would be used from two threads at once.
/// </remarks>
public sealed class TransformDataset : Dataset
{
    private readonly Func<int, Tensor, Tensor, (Tensor Input, Tensor Target)> _transform;

    /// <summary>Applies <paramref name="transform"/> to each input and <paramref name="targetTransform"/> to each target (either may be null).</summary>
    public TransformDataset(Dataset source, Func<Tensor, Tensor>? transform = null, Func<Tensor, Tensor>? targetTransform = null)
        : this(source, (_, x, y) => (transform is null ? x : transform(x), targetTransform is null ? y : targetTransform(y)))
    {
    }

    /// <summary>
    /// Applies <paramref name="transform"/> to each sample: it receives the sample's index, input and
    /// target and returns the new input and target (the index can seed a per-sample augmentation).
    /// </summary>
    public TransformDataset(Dataset source, Func<int, Tensor, Tensor, (Tensor Input, Tensor Target)> transform)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(transform);
        Source = source;
        _transform = transform;
        ClassNames = source.ClassNames;
    }

    /// <summary>The untransformed samples.</summary>
    public Dataset Source { get; }

    /// <inheritdoc/>
    public override int Count => Source.Count;

    /// <inheritdoc/>
    public override (Tensor Input, Tensor Target) this[int index]
    {
        get
        {
            var (x, y) = Source[CheckIndex(index)];
            var (tx, ty) = _transform(index, x, y);
            if (tx is null || ty is null)
                throw new InvalidOperationException($"TransformDataset: the transform returned a null {(tx is null ? "input" : "target")} for sample {index}.");
            return (tx, ty);
        }
    }
}
