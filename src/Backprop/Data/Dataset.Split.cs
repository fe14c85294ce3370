namespace Backprop.Data;

public abstract partial class Dataset
{
    /// <summary>
    /// Splits <paramref name="dataset"/> into non-overlapping random subsets of the given sizes, which
    /// must add up to its <see cref="Count"/> (PyTorch's <c>random_split</c>). The split is a function
    /// of <paramref name="seed"/> only: the same seed gives the same subsets on every run.
    /// </summary>
    /// <exception cref="ArgumentException">A length is negative or the lengths do not add up to the dataset's size.</exception>
    public static Subset[] RandomSplit(Dataset dataset, IReadOnlyList<int> lengths, ulong seed = 0)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(lengths);
        long total = 0;
        foreach (var l in lengths)
        {
            if (l < 0) throw new ArgumentException($"Dataset.RandomSplit: lengths must be non-negative, got [{string.Join(", ", lengths)}].", nameof(lengths));
            total += l;
        }
        if (total != dataset.Count)
            throw new ArgumentException(
                $"Dataset.RandomSplit: lengths [{string.Join(", ", lengths)}] add up to {total}, but the dataset has {dataset.Count} samples.", nameof(lengths));
        var order = new Generator(seed).Permutation(dataset.Count);
        var parts = new Subset[lengths.Count];
        int start = 0;
        for (int i = 0; i < parts.Length; i++)
        {
            parts[i] = new Subset(dataset, new ArraySegment<int>(order, start, lengths[i]));
            start += lengths[i];
        }
        return parts;
    }

    /// <summary>
    /// Splits <paramref name="dataset"/> into random subsets holding the given fractions of it, which
    /// must add up to 1. As in PyTorch, subset i gets floor(fraction·Count) samples and the samples
    /// left over go one each to the first subsets, so the sizes add up to <see cref="Count"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A fraction is outside [0, 1] or the fractions do not add up to 1.</exception>
    public static Subset[] RandomSplit(Dataset dataset, IReadOnlyList<double> fractions, ulong seed = 0)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(fractions);
        string list = string.Join(", ", fractions.Select(f => f.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        if (fractions.Count == 0 || fractions.Any(f => !(f >= 0 && f <= 1)) || Math.Abs(fractions.Sum() - 1) > 1e-9)
            throw new ArgumentException($"Dataset.RandomSplit: fractions must lie in [0, 1] and add up to 1, got [{list}].", nameof(fractions));
        int n = dataset.Count;
        var lengths = fractions.Select(f => (int)Math.Floor(n * f)).ToArray();
        int left = n - lengths.Sum();
        for (int i = 0; i < left; i++) lengths[i % lengths.Length]++;
        return RandomSplit(dataset, lengths, seed);
    }
}
