using Backprop.Data;

namespace Backprop.Tests;

/// <summary>Subset, RandomSplit, ConcatDataset and TransformDataset.</summary>
public class DataWrapperTests
{
    /// <summary>Inputs are [id, -id], targets id + offset, so that a batch row tells which sample it is.</summary>
    internal static TensorDataset Numbered(int n, int offset = 0)
    {
        var x = new float[n * 2];
        var y = new long[n];
        for (int i = 0; i < n; i++) { x[2 * i] = i + offset; x[2 * i + 1] = -(i + offset); y[i] = i + offset; }
        return new TensorDataset(Tensor.FromArray(x, n, 2), Tensor.FromArray(y));
    }

    private static long[] Ids(Dataset d) => Enumerable.Range(0, d.Count).Select(i => d[i].Target.GetLong()).ToArray();

    private static long[] Ids(Batch b)
    {
        var ids = b.Target.ToLongArray();
        Assert.Equal(ids.Select(v => (float)v), b.Input.Select(1, 0).ToArray()); // inputs travel with their targets
        return ids;
    }

    private sealed class PerSample(Dataset inner) : Dataset
    {
        public override int Count => inner.Count;
        public override (Tensor Input, Tensor Target) this[int index] => inner[index];
    }

    [Fact]
    public void SubsetSelectsTheGivenIndicesInOrder()
    {
        var ds = Numbered(10);
        var sub = new Subset(ds, [7, 2, 2, 9]);
        Assert.Equal(4, sub.Count);
        Assert.Same(ds, sub.Dataset);
        Assert.Equal(new long[] { 7, 2, 2, 9 }, Ids(sub));
        Assert.Equal(new[] { 7f, -7f }, sub[0].Input.ToArray());
        Assert.Equal(new long[] { 9, 7, 2 }, Ids(sub.GetBatch([3, 0, 1])));
        Assert.Equal(new DataLoader(new PerSample(sub), 3, shuffle: true, seed: 5).Select(Ids), new DataLoader(sub, 3, shuffle: true, seed: 5).Select(Ids));
        var oob = Assert.Throws<ArgumentOutOfRangeException>(() => new Subset(ds, [1, 10]));
        Assert.Contains("index 10 at position 1 is out of range for a TensorDataset of 10 samples", oob.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => sub[4]);
        Assert.Throws<ArgumentOutOfRangeException>(() => sub.GetBatch([4]));
        var named = new TensorDataset(Tensor.Zeros(2, 1), Tensor.Zeros([2], DType.Int64)) { ClassNames = ["a", "b"] };
        Assert.Equal(["a", "b"], new Subset(named, [1]).ClassNames!);
    }

    [Fact]
    public void RandomSplitByLengthsIsADisjointSeededPartition()
    {
        var ds = Numbered(50);
        var parts = Dataset.RandomSplit(ds, [30, 15, 5], seed: 3);
        Assert.Equal([30, 15, 5], parts.Select(p => p.Count));
        var all = parts.SelectMany(Ids).ToArray();
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)i), all.Order());
        Assert.NotEqual(Enumerable.Range(0, 50).Select(i => (long)i), all); // shuffled, not cut in order
        var again = Dataset.RandomSplit(ds, [30, 15, 5], seed: 3);
        Assert.Equal(all, again.SelectMany(Ids));
        Assert.NotEqual(all, Dataset.RandomSplit(ds, [30, 15, 5], seed: 4).SelectMany(Ids));
        var ex = Assert.Throws<ArgumentException>(() => Dataset.RandomSplit(ds, [30, 15]));
        Assert.Contains("lengths [30, 15] add up to 45, but the dataset has 50 samples", ex.Message);
        Assert.Throws<ArgumentException>(() => Dataset.RandomSplit(ds, [60, -10]));
    }

    [Fact]
    public void RandomSplitByFractionsGivesTheLeftoverSamplesToTheFirstParts()
    {
        // PyTorch: random_split(range(11), [0.5, 0.5]) has lengths 6 and 5; [0.4, 0.4, 0.2] of 12 gives 5, 5, 2 (4.8 -> 4 + 1, 4.8 -> 4 + 1, 2.4 -> 2).
        Assert.Equal([6, 5], Dataset.RandomSplit(Numbered(11), [0.5, 0.5], seed: 1).Select(p => p.Count));
        Assert.Equal([5, 5, 2], Dataset.RandomSplit(Numbered(12), [0.4, 0.4, 0.2], seed: 1).Select(p => p.Count));
        Assert.Equal([8, 2], Dataset.RandomSplit(Numbered(10), [0.8, 0.2], seed: 1).Select(p => p.Count));
        var (byFraction, byLength) = (Dataset.RandomSplit(Numbered(10), [0.8, 0.2], seed: 9), Dataset.RandomSplit(Numbered(10), [8, 2], seed: 9));
        Assert.Equal(byLength.SelectMany(Ids), byFraction.SelectMany(Ids));
        var ex = Assert.Throws<ArgumentException>(() => Dataset.RandomSplit(Numbered(10), [0.5, 0.4]));
        Assert.Contains("fractions must lie in [0, 1] and add up to 1, got [0.5, 0.4]", ex.Message);
        Assert.Throws<ArgumentException>(() => Dataset.RandomSplit(Numbered(10), [1.5, -0.5]));
        Assert.Throws<ArgumentException>(() => Dataset.RandomSplit(Numbered(10), [double.NaN, 1.0]));
    }

    [Fact]
    public void ConcatDatasetChainsItsPartsAndBatchesAcrossThem()
    {
        var a = Numbered(5);
        var b = Numbered(0, 100);
        var c = Numbered(4, 200);
        var cat = new ConcatDataset(a, b, c);
        Assert.Equal(9, cat.Count);
        Assert.Equal(new long[] { 0, 1, 2, 3, 4, 200, 201, 202, 203 }, Ids(cat));
        Assert.Equal(new long[] { 202, 1, 200, 4 }, Ids(cat.GetBatch([7, 1, 5, 4])));   // mixed parts, order kept
        Assert.Equal(new long[] { 203, 201 }, Ids(cat.GetBatch([8, 6])));               // one part
        Assert.Throws<ArgumentOutOfRangeException>(() => cat[9]);
        Assert.Throws<ArgumentOutOfRangeException>(() => cat.GetBatch([0, 9]));
        // A shuffled loader sees the same batches as the per-sample path.
        var fast = new DataLoader(cat, 4, shuffle: true, seed: 2).Select(Ids).ToList();
        var slow = new DataLoader(new PerSample(cat), 4, shuffle: true, seed: 2).Select(Ids).ToList();
        Assert.Equal(slow, fast);
        Assert.Throws<ArgumentException>(() => new ConcatDataset());
    }

    [Fact]
    public void ConcatDatasetRefusesPartsWithDifferentSampleShapes()
    {
        var wide = new TensorDataset(Tensor.Zeros(3, 4), Tensor.Zeros([3], DType.Int64));
        var cat = new ConcatDataset(Numbered(3), wide);
        Assert.Equal(4, cat[4].Input.Size(0));
        var ex = Assert.Throws<ShapeException>(() => cat.GetBatch([0, 4]));
        Assert.Contains("dataset 1 (TensorDataset) has inputs of float32 [4] but dataset 0 (TensorDataset) has float32 [2]", ex.Message);
    }

    [Fact]
    public void TransformDatasetAppliesItsFunctionsToEachSample()
    {
        var ds = Numbered(6);
        var t = new TransformDataset(ds, x => x * 10, y => Tensor.Scalar(y.GetLong() + 1, DType.Int64));
        Assert.Equal(6, t.Count);
        Assert.Equal(new[] { 30f, -30f }, t[3].Input.ToArray());
        Assert.Equal(4, t[3].Target.GetLong());
        Assert.Equal(new[] { 3f, -3f }, ds[3].Input.ToArray()); // the source is untouched
        var batch = new DataLoader(t, 6).Single();
        Assert.Equal(Enumerable.Range(0, 6).SelectMany(i => new[] { 10f * i, -10f * i }), batch.Input.ToArray());
        Assert.Equal(Enumerable.Range(1, 6).Select(i => (long)i), batch.Target.ToLongArray());
        // Only the input, or the whole sample with its index.
        Assert.Equal(3, new TransformDataset(ds, x => x.Reshape(1, 2)).GetBatch([0, 1]).Input.Rank);
        var byIndex = new TransformDataset(ds, (i, x, y) => (x + i, Tensor.Scalar(7, DType.Int64)));
        Assert.Equal(new[] { 4f, 0f }, byIndex[2].Input.ToArray());
        Assert.Equal(7, byIndex[2].Target.GetLong());
        var bad = new TransformDataset(ds, _ => null!);
        Assert.Contains("returned a null input for sample 1", Assert.Throws<InvalidOperationException>(() => bad[1]).Message);
    }
}
