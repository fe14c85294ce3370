namespace Backprop.NN;

/// <summary>
/// Splits dimension <see cref="Dim"/> into <see cref="Sizes"/> (torch.nn.Unflatten), the inverse of
/// <see cref="Flatten"/>: <c>new Unflatten(1, [16, 7, 7])</c> turns [N, 784] into [N, 16, 7, 7]. One
/// size may be −1 (inferred). A view when the input is contiguous.
/// </summary>
public sealed class Unflatten : Module
{
    /// <summary>Creates the layer.</summary>
    public Unflatten(int dim, int[] sizes)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        if (sizes.Length == 0) throw new ArgumentException("Unflatten: give at least one size.", nameof(sizes));
        if (sizes.Count(s => s == -1) > 1 || sizes.Any(s => s < -1))
            throw new ArgumentException($"Unflatten: sizes [{string.Join(", ", sizes)}] must be non-negative, with at most one −1.", nameof(sizes));
        Dim = dim;
        Sizes = [.. sizes];
    }

    /// <summary>The dimension that is split (negative counts from the end).</summary>
    public int Dim { get; }

    /// <summary>The sizes it is split into.</summary>
    public IReadOnlyList<int> Sizes { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        int rank = input.Rank;
        int d = Dim < 0 ? Dim + rank : Dim;
        if (d < 0 || d >= rank) throw new ArgumentOutOfRangeException(nameof(input), $"Unflatten: dimension {Dim} is out of range for an input {input.Shape}.");
        long known = 1;
        foreach (var s in Sizes) if (s != -1) known *= s;
        int size = input.Size(d);
        bool infer = Sizes.Contains(-1);
        if (infer ? known == 0 || size % known != 0 : known != size)
            throw new ShapeException($"Unflatten: cannot split dimension {Dim} of size {size} (input {input.Shape}) into [{string.Join(", ", Sizes)}].");
        var shape = new int[rank - 1 + Sizes.Count];
        for (int i = 0; i < d; i++) shape[i] = input.Size(i);
        for (int i = 0; i < Sizes.Count; i++) shape[d + i] = Sizes[i] == -1 ? (int)(size / known) : Sizes[i];
        for (int i = d + 1; i < rank; i++) shape[i - 1 + Sizes.Count] = input.Size(i);
        return input.Reshape(shape);
    }

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"dim={Dim}, unflattened_size=({string.Join(", ", Sizes)})";
}
