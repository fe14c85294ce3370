using Backprop.Data;

namespace Backprop.Tests;

/// <summary>
/// The image pipeline: seeded random crop, flip and translation, per-channel normalization, applied
/// per sample as batches are built, reproducible for a seed, and the same with or without the
/// loader's background prefetching.
/// </summary>
public class AugmentationTests
{
    /// <summary>Random 1×6×5 images (flat, 30 values) with the sample id as target.</summary>
    private static TensorDataset Images(int n) =>
        new(Tensor.Randn([n, 30], new Generator(3)), Tensor.FromArray(Enumerable.Range(0, n).Select(i => (long)i).ToArray(), n));

    private static AugmentedDataset Augmented(Dataset source, ulong seed) => new(source, seed,
        [new RandomCrop(6, 5, padding: 2), new RandomHorizontalFlip(), new RandomTranslate(0.2, 0.2), new Normalize([0.5f], [2f])], imageShape: (1, 6, 5));

    private static List<(float[] X, long[] Y)> Run(DataLoader loader, int epochs)
    {
        var r = new List<(float[], long[])>();
        for (int e = 0; e < epochs; e++)
            foreach (var (x, y) in loader) r.Add((x.ToArray(), y.ToLongArray()));
        return r;
    }

    [Fact]
    public void PrefetchingOnAndOffGiveTheSameBatchesInTheSameOrder()
    {
        var data = Augmented(Images(37), seed: 5);
        var plain = Run(new DataLoader(data, 8, shuffle: true, seed: 9), 3);
        var prefetched = Run(new DataLoader(data, 8, shuffle: true, seed: 9, prefetch: true, recycleBatches: true), 3);
        Assert.Equal(plain.Count, prefetched.Count);
        for (int i = 0; i < plain.Count; i++)
        {
            Assert.Equal(plain[i].Y, prefetched[i].Y);
            Assert.Equal(plain[i].X, prefetched[i].X); // bit-identical augmented pixels
        }
        // a new dataset and loader with the same seeds reproduce them; another augmentation seed does not
        Assert.Equal(plain.Select(b => b.X), Run(new DataLoader(Augmented(Images(37), 5), 8, shuffle: true, seed: 9), 3).Select(b => b.X));
        Assert.NotEqual(plain.Select(b => b.X), Run(new DataLoader(Augmented(Images(37), 6), 8, shuffle: true, seed: 9), 3).Select(b => b.X));
    }

    [Fact]
    public void EachEpochDrawsFreshAugmentationsAndRandomAccessAgrees()
    {
        var data = Augmented(Images(16), seed: 1);
        var loader = new DataLoader(data, 16); // no shuffling: every epoch is samples 0..15 in order
        var epochs = Run(loader, 3);
        Assert.Equal(epochs[0].Y, epochs[1].Y);
        Assert.NotEqual(epochs[0].X, epochs[1].X);
        Assert.NotEqual(epochs[1].X, epochs[2].X);
        // GetBatch(epoch, i) and a resumed loader see exactly what the enumeration saw
        Assert.Equal(epochs[2].X, loader.GetBatch(2, 0).Input.ToArray());
        var resumed = new DataLoader(Augmented(Images(16), seed: 1), 16, prefetch: true) { Epoch = 1 };
        Assert.Equal(epochs[1].X, Run(resumed, 1)[0].X);
        // the indexer (outside a loader: epoch 0) is the sample's row of epoch 0
        Assert.Equal(epochs[0].X.Skip(7 * 30).Take(30).ToArray(), data[7].Input.ToArray());
    }

    [Fact]
    public void RandomCropIsAWindowOfThePaddedImage()
    {
        var img = Enumerable.Range(1, 20).Select(v => (float)v).ToArray(); // 1 channel, 4×5
        var crop = new RandomCrop(4, 5, padding: 1, fill: -1);
        var seen = new HashSet<(int, int)>();
        for (int s = 0; s < 200; s++)
        {
            var r = new AugmentRandom(7, 0, s);
            var dst = new float[20];
            crop.Apply(img, dst, 1, 4, 5, ref r);
            // find the offset (dy, dx) in [−1, 1]² that explains the output
            var match = (from dy in new[] { -1, 0, 1 } from dx in new[] { -1, 0, 1 }
                         where Enumerable.Range(0, 20).All(i =>
                         {
                             int y = i / 5 + dy, x = i % 5 + dx;
                             return dst[i] == (y is >= 0 and < 4 && x is >= 0 and < 5 ? img[y * 5 + x] : -1f);
                         })
                         select (dy, dx)).ToList();
            Assert.Single(match);
            seen.Add(match[0]);
        }
        Assert.Equal(9, seen.Count); // every position is drawn
        // a crop of the whole image with no padding is the identity
        var id = new float[20];
        var r0 = new AugmentRandom(1, 0, 0);
        new RandomCrop(4, 5, 0).Apply(img, id, 1, 4, 5, ref r0);
        Assert.Equal(img, id);
        Assert.Contains("does not fit", Assert.Throws<ArgumentException>(() => new RandomCrop(9, 2).OutputShape(1, 4, 5)).Message);
    }

    [Fact]
    public void FlipTranslateAndNormalizeDoWhatTheySay()
    {
        var img = Enumerable.Range(0, 2 * 3 * 4).Select(v => (float)v).ToArray(); // 2 channels, 3×4
        var dst = new float[img.Length];
        var r = new AugmentRandom(1, 0, 0);
        new RandomHorizontalFlip(1).Apply(img, dst, 2, 3, 4, ref r);
        Assert.Equal([3f, 2, 1, 0, 7, 6, 5, 4], dst.Take(8));
        new RandomHorizontalFlip(0).Apply(img, dst, 2, 3, 4, ref r);
        Assert.Equal(img, dst);
        new Normalize([1f, 2f], [2f, 4f]).Apply(img, dst, 2, 3, 4, ref r);
        Assert.Equal(img.Select((v, i) => i < 12 ? (v - 1) / 2 : (v - 2) / 4), dst);
        // translation: some whole-pixel shift within ±1 row and ±1 column (25% of 4 columns, 34% of 3 rows), zeros shifted in
        var shifts = new HashSet<(int, int)>();
        var translate = new RandomTranslate(0.25, 0.34);
        for (int s = 0; s < 300; s++)
        {
            var rs = new AugmentRandom(3, 1, s);
            translate.Apply(img, dst, 2, 3, 4, ref rs);
            var found = (from ty in new[] { -1, 0, 1 } from tx in new[] { -1, 0, 1 }
                         where Enumerable.Range(0, 24).All(i =>
                         {
                             int c = i / 12, y = i / 4 % 3 - ty, x = i % 4 - tx;
                             return dst[i] == (y is >= 0 and < 3 && x is >= 0 and < 4 ? img[c * 12 + y * 4 + x] : 0f);
                         })
                         select (ty, tx)).ToList();
            Assert.NotEmpty(found);
            shifts.Add(found[0]);
        }
        Assert.Equal(9, shifts.Count);
    }

    [Fact]
    public void AWarmAugmentedBatchIsBuiltInTheRecycledBufferWithFewAllocations()
    {
        var data = Augmented(Images(256), seed: 2);
        var loader = new DataLoader(data, 64, shuffle: true, seed: 1, recycleBatches: true);
        foreach (var _ in loader) { } // warm: pools and scratch images exist
        long before = GC.GetAllocatedBytesForCurrentThread();
        int batches = 0;
        foreach (var (x, _) in loader) batches++;
        long perBatch = (GC.GetAllocatedBytesForCurrentThread() - before) / batches;
        // a batch's pixels alone are 64·30·4 = 7.7 KB; only tensor objects and the shuffled order are allocated
        Assert.True(perBatch < 4096, $"an augmented batch allocated {perBatch} bytes");
    }

    [Fact]
    public void BadInputsAreNamed()
    {
        var ints = new TensorDataset(Tensor.FromArray(new long[12], 2, 6), Tensor.FromArray(new long[2], 2));
        Assert.Contains("must be float32", Assert.Throws<ArgumentException>(() => new AugmentedDataset(ints, 1, [new RandomHorizontalFlip()]).GetBatch([0])).Message);
        var flat = Images(4);
        Assert.Contains("give imageShape", Assert.Throws<ShapeException>(() => new AugmentedDataset(flat, 1, [new RandomHorizontalFlip()]).GetBatch([0])).Message);
        Assert.Contains("cannot be read as images 1x5x5", Assert.Throws<ShapeException>(() => new AugmentedDataset(flat, 1, [], (1, 5, 5)).GetBatch([0])).Message);
        Assert.Contains("2 means and stds for an image of 1 channels",
            Assert.Throws<ArgumentException>(() => new AugmentedDataset(flat, 1, [new Normalize([0, 0], [1, 1])], (1, 6, 5)).GetBatch([0])).Message);
    }

    [Fact]
    public void ACropThatChangesTheSizeGivesImageBatches()
    {
        var data = new AugmentedDataset(Images(5), 3, [new RandomCrop(4, 3, padding: 0)], (1, 6, 5));
        var b = data.GetBatch([0, 1, 2]);
        Assert.Equal([3, 1, 4, 3], b.Input.Shape.AsSpan().ToArray());
        Assert.Equal([0L, 1, 2], b.Target.ToLongArray());
    }
}
