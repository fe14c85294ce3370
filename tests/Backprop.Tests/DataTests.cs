using System.Text.Json.Nodes;
using Backprop.Data;
using static Backprop.Tests.DataTestFiles;

namespace Backprop.Tests;

public class DataIdxTests
{
    private static readonly int[] TrainCounts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
    private static readonly int[] TestCounts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

    private static int[] CountClasses(IEnumerable<long> labels, int classes = 10)
    {
        var c = new int[classes];
        foreach (var l in labels) c[l]++;
        return c;
    }

    [Fact]
    public void ReadsRealMnistHeadersAndLabels()
    {
        var images = Idx.Read(Shared("mnist", "train-images-idx3-ubyte.gz"));
        Assert.Equal(IdxType.UInt8, images.Type);
        Assert.Equal([60000, 28, 28], images.Dims);
        Assert.Equal(47040000, images.Data.Length);
        var labels = Idx.Read(Shared("mnist", "train-labels-idx1-ubyte.gz"));
        Assert.Equal([60000], labels.Dims);
        Assert.Equal(5, labels.Data[0]);
        Assert.Equal(TrainCounts, CountClasses(labels.Data.Select(b => (long)b)));
        var testLabels = Idx.Read(Shared("mnist", "t10k-labels-idx1-ubyte.gz"));
        Assert.Equal(TestCounts, CountClasses(testLabels.Data.Select(b => (long)b)));
        var t = labels.ToTensor();
        Assert.Equal(DType.Int64, t.DType);
        Assert.Equal(5, t.GetLong(0));
    }

    [Fact]
    public void GzipAndRawGiveTheSameContentWhateverTheFileName()
    {
        using var dir = new DataTempDir();
        string gz = Shared("mnist", "t10k-labels-idx1-ubyte.gz");
        var raw = Gunzip(gz);
        Assert.Equal(10008, raw.Length);
        var a = Idx.Read(gz);
        var b = Idx.Read(dir.File("labels-raw", raw));
        var c = Idx.Read(dir.File("misleading-name.gz", raw));          // detected by magic, not by name
        var d = Idx.Read(dir.File("misleading-name.idx", File.ReadAllBytes(gz)));
        Assert.Equal(a.Data, b.Data);
        Assert.Equal(a.Data, c.Data);
        Assert.Equal(a.Data, d.Data);
        Assert.Equal(a.Dims, b.Dims);
        var limited = Idx.Read(gz, limit: 7);
        Assert.Equal([7], limited.Dims);
        Assert.Equal(a.Data[..7], limited.Data);
    }

    [Fact]
    public void WritesAndReadsOtherElementTypes()
    {
        using var dir = new DataTempDir();
        var shorts = new byte[] { 0x00, 0x01, 0xFF, 0xFE, 0x7F, 0xFF, 0x80, 0x00 }; // 1, -2, 32767, -32768
        string p = Path.Combine(dir.Path, "s.idx");
        Idx.Write(p, IdxType.Int16, [2, 2], shorts, gzip: true);
        var f = Idx.Read(p);
        Assert.Equal(IdxType.Int16, f.Type);
        Assert.Equal(new long[] { 1, -2, 32767, -32768 }, f.ToTensor().ToLongArray());
        var floats = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteSingleBigEndian(floats, 1.5f);
        System.Buffers.Binary.BinaryPrimitives.WriteSingleBigEndian(floats.AsSpan(4), -0.25f);
        var ff = Idx.Read(dir.File("f.idx", IdxBytes(0x0D, [2], floats)));
        Assert.Equal(new[] { 1.5f, -0.25f }, ff.ToTensor().ToArray());
        Assert.Equal(new long[] { -1, 5 }, Idx.Read(dir.File("b.idx", IdxBytes(0x09, [2], [0xFF, 5]))).ToTensor().ToLongArray());
        var ex = Assert.Throws<ArgumentException>(() => Idx.Write(p, IdxType.UInt8, [3], new byte[2]));
        Assert.Contains("need 3 bytes", ex.Message);
    }

    [Fact]
    public void MissingFileNamesThePath()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => Idx.Read("/nonexistent/dir/train-images-idx3-ubyte.gz"));
        Assert.Contains("/nonexistent/dir/train-images-idx3-ubyte.gz", ex.Message);
    }

    [Fact]
    public void WrongMagicSaysWhatWasFoundAndExpected()
    {
        using var dir = new DataTempDir();
        var bytes = IdxBytes(0x08, [2], [1, 2]);
        bytes[0] = 0x12; bytes[1] = 0x34;
        string p = dir.File("bad", bytes);
        var ex = Assert.Throws<DataFormatException>(() => Idx.Read(p));
        Assert.Equal(0, ex.Offset);
        Assert.Equal(p, ex.FilePath);
        Assert.Contains("0x12340801", ex.Message);
        Assert.Contains("0x00000803", ex.Message);
        Assert.Contains(p, ex.Message);
        // Plain text is not IDX either, and the message says so rather than failing later.
        var text = Assert.Throws<DataFormatException>(() => Idx.Read(dir.Text("t.txt", "hello world")));
        Assert.Contains("not an IDX file", text.Message);
    }

    [Fact]
    public void UnsupportedTypeAndBadDimensionsAreRejected()
    {
        using var dir = new DataTempDir();
        var ex = Assert.Throws<DataFormatException>(() => Idx.Read(dir.File("t", IdxBytes(0x07, [2], [1, 2]))));
        Assert.Equal(2, ex.Offset);
        Assert.Contains("unsupported IDX element type 0x07", ex.Message);
        var zero = Assert.Throws<DataFormatException>(() => Idx.Read(dir.File("z", IdxBytes(0x08, [3, 0], []))));
        Assert.Equal(8, zero.Offset);
        Assert.Contains("dimension 1 at byte 8 is 0", zero.Message);
        var neg = Assert.Throws<DataFormatException>(() => Idx.Read(dir.File("n", IdxBytes(0x08, [-5], []))));
        Assert.Contains("is -5", neg.Message);
        var rank0 = Assert.Throws<DataFormatException>(() => Idx.Read(dir.File("r", IdxBytes(0x08, [], []))));
        Assert.Equal(3, rank0.Offset);
        var huge = Assert.Throws<DataFormatException>(() => Idx.Read(dir.File("h", IdxBytes(0x08, [65536, 65536, 65536], [1, 2, 3]))));
        Assert.Contains("more than the supported", huge.Message);
        // Sizes whose product overflows a long (found by FuzzTests.IdxReader): still that message.
        var overflow = Assert.Throws<DataFormatException>(() => Idx.Read(dir.File("o", IdxBytes(0x08, [int.MaxValue, int.MaxValue, int.MaxValue], [1, 2, 3])), limit: 1));
        Assert.Contains("more than the supported", overflow.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TruncatedFilesSayWhatWasExpectedAndFound(bool gzip)
    {
        using var dir = new DataTempDir();
        byte[] Maybe(byte[] b) => gzip ? Gzip(b) : b;
        var header = Assert.Throws<DataFormatException>(() => Idx.Read(dir.File("h", Maybe([0, 0, 8, 3, 0, 0]))));
        Assert.Contains("truncated header", header.Message);
        Assert.Equal(6, header.Offset);
        var magic = Assert.Throws<DataFormatException>(() => Idx.Read(dir.File("m", Maybe([0, 0]))));
        Assert.Contains("inside the magic number", magic.Message);
        var data = Assert.Throws<DataFormatException>(() => Idx.Read(dir.File("d", Maybe(IdxBytes(0x08, [2, 5], [1, 2, 3, 4, 5, 6, 7])))));
        Assert.Contains("truncated", data.Message);
        Assert.Contains("10 bytes of data from byte 12", data.Message);
        Assert.Contains("ends after 7 bytes, at byte 19", data.Message);
        Assert.Equal(19, data.Offset);
        if (gzip) Assert.Contains("decompressed", data.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TrailingGarbageIsAnError(bool gzip)
    {
        using var dir = new DataTempDir();
        var bytes = IdxBytes(0x08, [3], [1, 2, 3, 9, 9]);
        var ex = Assert.Throws<DataFormatException>(() => Idx.Read(dir.File("g", gzip ? Gzip(bytes) : bytes)));
        Assert.Contains("2 bytes of trailing data", ex.Message);
        Assert.Equal(11, ex.Offset);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void HugeDeclaredSizeWithTinyFileDoesNotAllocateIt(bool gzip)
    {
        using var dir = new DataTempDir();
        // Declares 2000000×28×28 = 1.5 GB of pixels but holds 100 bytes.
        var bytes = IdxBytes(0x08, [2_000_000, 28, 28], new byte[100]);
        string p = dir.File("huge", gzip ? Gzip(bytes) : bytes);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<DataFormatException>(() => Idx.Read(p));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("1568000000 bytes of data", ex.Message);
        Assert.Contains("ends after 100 bytes", ex.Message);
        Assert.True(allocated < 8 << 20, $"reading a corrupt header allocated {allocated} bytes");
    }

    [Fact]
    public void CorruptGzipIsReported()
    {
        using var dir = new DataTempDir();
        var good = Gzip(IdxBytes(0x08, [200], new byte[200]));
        for (int i = 12; i < good.Length - 8; i++) good[i] ^= 0x5A;
        var ex = Assert.Throws<DataFormatException>(() => Idx.Read(dir.File("c.gz", good)));
        Assert.Contains("c.gz", ex.Message);
        // A compressed stream cut short: either the inflater or the size check must say so.
        var whole = Gzip(IdxBytes(0x08, [5000], Enumerable.Range(0, 5000).Select(i => (byte)(i * 7919 >> 3)).ToArray()));
        var cut = Assert.Throws<DataFormatException>(() => Idx.Read(dir.File("cut.gz", whole[..(whole.Length / 2)])));
        Assert.Contains("cut.gz", cut.Message);
        Assert.NotNull(cut.Offset);
    }
}

public class DataMnistTests
{
    private static void WriteMnist(string dir, Split split, byte[] pixels, int count, int rows, int cols, byte[] labels, bool gzip)
    {
        string prefix = split == Split.Train ? "train" : "t10k";
        string ext = gzip ? ".gz" : "";
        Idx.Write(Path.Combine(dir, $"{prefix}-images-idx3-ubyte{ext}"), IdxType.UInt8, [count, rows, cols], pixels, gzip);
        Idx.Write(Path.Combine(dir, $"{prefix}-labels-idx1-ubyte{ext}"), IdxType.UInt8, [labels.Length], labels, gzip);
    }

    [Fact]
    public void LoadsTheRealTrainingSetAsFloatsInUnitRange()
    {
        var train = Mnist.Load(Path.GetDirectoryName(Shared("mnist", "train-images-idx3-ubyte.gz"))!, Split.Train, limit: 1000);
        Assert.Equal(1000, train.Count);
        Assert.Equal([1000, 784], train.Inputs.Shape.ToArray());
        Assert.Equal(DType.Float32, train.Inputs.DType);
        Assert.Equal([1000], train.Targets.Shape.ToArray());
        Assert.Equal(DType.Int64, train.Targets.DType);
        Assert.Equal(5, train.Targets.GetLong(0));
        var px = train.Inputs.ToArray();
        Assert.Equal(0f, px.Min());
        Assert.Equal(1f, px.Max());
        Assert.Equal(Mnist.ClassNames, train.ClassNames);
        var raw = Idx.Read(Shared("mnist", "train-images-idx3-ubyte.gz"), limit: 1);
        for (int i = 0; i < 784; i++) Assert.Equal(raw.Data[i] / 255f, px[i]);
    }

    [Fact]
    public void LoadsTheRealTestSetWithItsClassCounts()
    {
        var test = Mnist.Load(Path.GetDirectoryName(Shared("mnist", "t10k-images-idx3-ubyte.gz"))!, Split.Test);
        Assert.Equal(10000, test.Count);
        var counts = new int[10];
        foreach (var l in test.Targets.ToLongArray()) counts[l]++;
        Assert.Equal([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009], counts);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LoadsHandMadeFilesCompressedOrNot(bool gzip)
    {
        using var dir = new DataTempDir();
        WriteMnist(dir.Path, Split.Train, [0, 51, 255, 102, 0, 0, 0, 0, 255, 255, 255, 255], 3, 2, 2, [7, 0, 9], gzip);
        var ds = Mnist.Load(dir.Path, Split.Train);
        Assert.Equal([3, 4], ds.Inputs.Shape.ToArray());
        TestUtil.Close([0f, 0.2f, 1f, 0.4f, 0, 0, 0, 0, 1, 1, 1, 1], ds.Inputs);
        Assert.Equal(new long[] { 7, 0, 9 }, ds.Targets.ToLongArray());
    }

    [Fact]
    public void MismatchedCountsNameBothFiles()
    {
        using var dir = new DataTempDir();
        WriteMnist(dir.Path, Split.Test, new byte[12], 3, 2, 2, [1, 2], gzip: true);
        var ex = Assert.Throws<DataFormatException>(() => Mnist.Load(dir.Path, Split.Test));
        Assert.Contains("t10k-images-idx3-ubyte.gz holds 3 images", ex.Message);
        Assert.Contains("t10k-labels-idx1-ubyte.gz holds 2 labels", ex.Message);
    }

    [Fact]
    public void BadLabelsAndWrongShapesAreRejected()
    {
        using var dir = new DataTempDir();
        WriteMnist(dir.Path, Split.Train, new byte[8], 2, 2, 2, [1, 12], gzip: false);
        var ex = Assert.Throws<DataFormatException>(() => Mnist.Load(dir.Path, Split.Train));
        Assert.Contains("label 12 of item 1", ex.Message);
        Idx.Write(Path.Combine(dir.Path, "train-images-idx3-ubyte"), IdxType.UInt8, [2, 4], new byte[8]);
        var shape = Assert.Throws<DataFormatException>(() => Mnist.Load(dir.Path, Split.Train));
        Assert.Contains("3 dimensions", shape.Message);
    }

    [Fact]
    public void MissingDirectoryAndFilesSayWhatWasLookedFor()
    {
        var ex = Assert.Throws<DirectoryNotFoundException>(() => Mnist.Load("/no/such/mnist", Split.Train));
        Assert.Contains("/no/such/mnist", ex.Message);
        Assert.Contains("train-images-idx3-ubyte.gz", ex.Message);
        Assert.Contains("train-labels-idx1-ubyte.gz", ex.Message);
        using var dir = new DataTempDir();
        var missing = Assert.Throws<FileNotFoundException>(() => Mnist.Load(dir.Path, Split.Test));
        Assert.Contains("t10k-images-idx3-ubyte.gz", missing.Message);
        Assert.Contains("t10k-images-idx3-ubyte,", missing.Message);
        Assert.Contains(dir.Path, missing.Message);
    }

    [Fact]
    public void FashionMnistUsesTheMnistLayoutAndItsClassNames()
    {
        using var dir = new DataTempDir();
        WriteMnist(dir.Path, Split.Test, new byte[8], 2, 2, 2, [9, 0], gzip: true);
        var ds = FashionMnist.Load(dir.Path, Split.Test);
        Assert.Equal("Ankle boot", ds.ClassNames![(int)ds.Targets.GetLong(0)]);
        // The Debian package may or may not be installed here; either way the default directory is
        // used, and a missing one says how to get it.
        if (Directory.Exists(FashionMnist.DefaultDirectory))
        {
            var real = FashionMnist.Load(null, Split.Test, limit: 100);
            Assert.Equal([100, 784], real.Inputs.Shape.ToArray());
            Assert.Equal(9, real.Targets.GetLong(0)); // the first Fashion-MNIST test image is an ankle boot
        }
        else
        {
            var ex = Assert.Throws<DirectoryNotFoundException>(() => FashionMnist.Load(null, Split.Test));
            Assert.Contains("dataset-fashion-mnist", ex.Message);
        }
    }
}

public class DataLoaderTests
{
    /// <summary>Inputs are [id, -id] so that a batch row tells which sample it is.</summary>
    private static TensorDataset Numbered(int n)
    {
        var x = new float[n * 2];
        var y = new long[n];
        for (int i = 0; i < n; i++) { x[2 * i] = i; x[2 * i + 1] = -i; y[i] = i; }
        return new TensorDataset(Tensor.FromArray(x, n, 2), Tensor.FromArray(y));
    }

    private static List<long[]> Epoch(DataLoader loader)
    {
        var r = new List<long[]>();
        foreach (var (x, y) in loader)
        {
            var ids = y.ToLongArray();
            Assert.Equal(ids.Select(v => (float)v), x.Select(1, 0).ToArray());
            r.Add(ids);
        }
        return r;
    }

    [Fact]
    public void TensorDatasetValidatesSampleCounts()
    {
        var ex = Assert.Throws<ShapeException>(() => new TensorDataset(Tensor.Zeros(5, 3), Tensor.Zeros(4)));
        Assert.Contains("inputs have 5 samples (shape [5, 3]) but targets have 4 (shape [4])", ex.Message);
        Assert.Throws<ShapeException>(() => new TensorDataset(Tensor.Scalar(1), Tensor.Zeros(1)));
        var ds = Numbered(4);
        Assert.Equal(4, ds.Count);
        var (x, y) = ds[2];
        Assert.Equal(new[] { 2f, -2f }, x.ToArray());
        Assert.Equal(2, y.GetLong());
        var oob = Assert.Throws<ArgumentOutOfRangeException>(() => ds[4]);
        Assert.Contains("sample index 4 is out of range for a dataset of 4 samples", oob.Message);
        var sub = ds.Subset(1, 2);
        Assert.Equal(new long[] { 1, 2 }, sub.Targets.ToLongArray());
    }

    [Fact]
    public void BatchShapesLastPartialBatchAndDropLast()
    {
        var ds = Numbered(25);
        var loader = new DataLoader(ds, batchSize: 10);
        Assert.Equal(3, loader.Count);
        var shapes = new List<string>();
        foreach (var (x, y) in loader) shapes.Add($"{x.Shape} {y.Shape}");
        Assert.Equal(["[10, 2] [10]", "[10, 2] [10]", "[5, 2] [5]"], shapes);
        var drop = new DataLoader(ds, batchSize: 10, dropLast: true);
        Assert.Equal(2, drop.Count);
        Assert.Equal(2, Epoch(drop).Count);
        Assert.Equal(Enumerable.Range(0, 25).Select(i => (long)i), Epoch(new DataLoader(ds, 10)).SelectMany(b => b));
        Assert.Equal(0, new DataLoader(ds, 30, dropLast: true).Count);
        Assert.Equal(1, new DataLoader(ds, 30).Count);
    }

    [Fact]
    public void RejectsBadArguments()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new DataLoader(Numbered(3), batchSize: 0));
        Assert.Contains("batchSize must be positive, got 0", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DataLoader(Numbered(3), batchSize: -2));
        Assert.Throws<ArgumentNullException>(() => new DataLoader(null!, batchSize: 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DataLoader(Numbered(3), 2).Epoch = -1);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DataLoader(Numbered(3), 2).Epoch = DataLoader.MaxEpoch + 1);
    }

    [Fact]
    public void ShuffleVisitsEverySampleOncePerEpochReproducibly()
    {
        var ds = Numbered(103);
        var a = new DataLoader(ds, 8, shuffle: true, seed: 1);
        var b = new DataLoader(ds, 8, shuffle: true, seed: 1);
        var c = new DataLoader(ds, 8, shuffle: true, seed: 2);
        var epochsA = new List<long[]>();
        for (int e = 0; e < 3; e++)
        {
            Assert.Equal(e, a.Epoch);
            var ea = Epoch(a).SelectMany(x => x).ToArray();
            var eb = Epoch(b).SelectMany(x => x).ToArray();
            Assert.Equal(ea, eb);
            Assert.Equal(Enumerable.Range(0, 103).Select(i => (long)i), ea.Order());
            Assert.NotEqual(Enumerable.Range(0, 103).Select(i => (long)i), ea);
            epochsA.Add(ea);
        }
        Assert.NotEqual(epochsA[0], epochsA[1]);
        Assert.NotEqual(epochsA[1], epochsA[2]);
        Assert.NotEqual(epochsA[0], Epoch(c).SelectMany(x => x).ToArray());
        // Setting Epoch replays that epoch.
        a.Epoch = 1;
        Assert.Equal(epochsA[1], Epoch(a).SelectMany(x => x).ToArray());
        Assert.Equal(2, a.Epoch);
    }

    [Fact]
    public void ResumingFromAStateDictGivesTheSameBatches()
    {
        var ds = Numbered(50);
        var reference = new DataLoader(ds, 7, shuffle: true, seed: 42);
        var all = new List<long[]>();
        for (int e = 0; e < 3; e++) all.AddRange(Epoch(reference));
        Assert.Equal(3 * 8, all.Count);

        // Interrupted run: one epoch, then 3 batches of the second, then a checkpoint.
        var first = new DataLoader(ds, 7, shuffle: true, seed: 42);
        var seen = Epoch(first);
        foreach (var (_, y) in first)
        {
            seen.Add(y.ToLongArray());
            if (seen.Count == 11) break;
        }
        var saved = JsonNode.Parse(first.StateDict().Meta.ToJsonString())!.AsObject(); // as a checkpoint file would
        Assert.Equal(1, (int)saved["epoch"]!);
        Assert.Equal(3, (int)saved["batch_index"]!);

        var resumed = new DataLoader(ds, 7, shuffle: true, seed: 42);
        var state = new StateDict();
        foreach (var (k, v) in saved) state.Meta[k] = v?.DeepClone();
        resumed.LoadStateDict(state);
        Assert.Equal(1, resumed.Epoch);
        Assert.Equal(3, resumed.BatchIndex);
        seen.AddRange(Epoch(resumed));   // the rest of epoch 1
        seen.AddRange(Epoch(resumed));   // epoch 2
        Assert.Equal(all, seen);

        // SkipBatches is the same jump without a state dict; a checkpoint taken after an epoch's last batch resumes at the next epoch.
        var skipped = new DataLoader(ds, 7, shuffle: true, seed: 42);
        skipped.SkipBatches(11);
        Assert.Equal(all.Skip(11), Epoch(skipped).Concat(Epoch(skipped)));
        var atEnd = new DataLoader(ds, 7, shuffle: true, seed: 42);
        Epoch(atEnd);
        Assert.Equal((1, 0), (atEnd.Epoch, atEnd.BatchIndex));
        Assert.Equal(all[8], atEnd.GetBatch(1, 0).Target.ToLongArray());
    }

    [Fact]
    public void LoadStateDictRejectsAnIncompatibleLoader()
    {
        var ds = Numbered(50);
        var state = new DataLoader(ds, 7, shuffle: true, seed: 42).StateDict();
        var ex = Assert.Throws<ArgumentException>(() => new DataLoader(ds, 8, shuffle: true, seed: 42).LoadStateDict(state));
        Assert.Contains("batch_size = 7", ex.Message);
        Assert.Contains("batch_size = 8", ex.Message);
        Assert.Throws<ArgumentException>(() => new DataLoader(ds, 7, shuffle: true, seed: 43).LoadStateDict(state));
        Assert.Throws<ArgumentException>(() => new DataLoader(Numbered(51), 7, shuffle: true, seed: 42).LoadStateDict(state));
        var missing = Assert.Throws<ArgumentException>(() => new DataLoader(ds, 7).LoadStateDict(new StateDict()));
        Assert.Contains("no 'epoch' entry", missing.Message);
    }

    [Fact]
    public void BreakingOffResumesAndMovingThePositionDuringEnumerationThrows()
    {
        var loader = new DataLoader(Numbered(20), 5);
        foreach (var _ in loader) break;
        Assert.Equal((0, 1), (loader.Epoch, loader.BatchIndex));
        Assert.Equal([[5, 6, 7, 8, 9], [10, 11, 12, 13, 14], [15, 16, 17, 18, 19]], Epoch(loader));
        var ex = Assert.Throws<InvalidOperationException>(() =>
        {
            foreach (var _ in loader) loader.Epoch = 0;
        });
        Assert.Contains("position was changed", ex.Message);
    }

    private sealed class PerSampleDataset(TensorDataset inner) : Dataset
    {
        public override int Count => inner.Count;
        public override (Tensor Input, Tensor Target) this[int index] => inner[index];
    }

    [Fact]
    public void GenericDatasetsBatchLikeTheTensorFastPath()
    {
        var ds = Numbered(30);
        var fast = new DataLoader(ds, 4, shuffle: true, seed: 3);
        var slow = new DataLoader(new PerSampleDataset(ds), 4, shuffle: true, seed: 3);
        using var ef = fast.GetEnumerator();
        using var es = slow.GetEnumerator();
        while (ef.MoveNext())
        {
            Assert.True(es.MoveNext());
            Assert.Equal(ef.Current.Input.Shape, es.Current.Input.Shape);
            Assert.Equal(ef.Current.Input.ToArray(), es.Current.Input.ToArray());
            Assert.Equal(ef.Current.Target.ToLongArray(), es.Current.Target.ToLongArray());
        }
        Assert.False(es.MoveNext());
    }

    [Fact]
    public void TensorBatchesAllocateLittleMoreThanTheirData()
    {
        var ds = new TensorDataset(Tensor.Zeros(1000, 784), Tensor.Zeros([1000], DType.Int64));
        var loader = new DataLoader(ds, 10, shuffle: true, seed: 1);
        using var e = loader.GetEnumerator();
        Assert.True(e.MoveNext()); // builds the epoch's permutation
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++) Assert.True(e.MoveNext());
        long perBatch = (GC.GetAllocatedBytesForCurrentThread() - before) / 50;
        long data = 10 * 784 * 4 + 10 * 8;
        Assert.True(perBatch < data + 1024, $"{perBatch} bytes per batch for {data} bytes of data");
    }

    [Fact]
    public void EpochSeedsDifferAcrossNeighbouringSeedsAndEpochs()
    {
        var seen = new HashSet<ulong>();
        for (ulong s = 0; s < 20; s++)
            for (int e = 0; e < 20; e++)
                Assert.True(seen.Add(DataLoader.EpochSeed(s, e)));
    }
}

public class DataDigitsTests
{
    private static int[] Counts(TensorDataset d)
    {
        var c = new int[10];
        foreach (var l in d.Targets.ToLongArray()) c[l]++;
        return c;
    }

    [Fact]
    public void EmbeddedSplitsHaveTheirRowsAndClassCounts()
    {
        var train = Digits.Load(Split.Train);
        Assert.Equal([3823, 64], train.Inputs.Shape.ToArray());
        Assert.Equal([376, 389, 380, 389, 387, 376, 377, 387, 380, 382], Counts(train));
        var test = Digits.Load(Split.Test);
        Assert.Equal([1797, 64], test.Inputs.Shape.ToArray());
        Assert.Equal([178, 182, 177, 183, 181, 182, 181, 179, 174, 180], Counts(test));
        var px = train.Inputs.ToArray();
        Assert.Equal(0f, px.Min());
        Assert.Equal(1f, px.Max());
        // First training row of optdigits.tra: 0,1,6,15,... label 0.
        Assert.Equal(new[] { 0f, 1 / 16f, 6 / 16f, 15 / 16f }, px[..4]);
        Assert.Equal(0, train.Targets.GetLong(0));
    }

    [Fact]
    public void CsvFilesOnDiskMatchTheEmbeddedCopies()
    {
        var tra = Digits.LoadCsv(Shared("digits8x8", "optdigits.tra.csv"));
        var tes = Digits.LoadCsv(Shared("digits8x8", "digits.csv.gz"));
        Assert.Equal(Digits.Load(Split.Train).Inputs.ToArray(), tra.Inputs.ToArray());
        Assert.Equal(Digits.Load(Split.Train).Targets.ToLongArray(), tra.Targets.ToLongArray());
        Assert.Equal(Digits.Load(Split.Test).Inputs.ToArray(), tes.Inputs.ToArray());
        Assert.Equal(Digits.Load(Split.Test).Targets.ToLongArray(), tes.Targets.ToLongArray());
    }

    [Fact]
    public void CsvErrorsNameFileLineAndField()
    {
        using var dir = new DataTempDir();
        string Row(int label, string? pixel = null) => string.Join(",", Enumerable.Repeat("0", 63).Prepend(pixel ?? "3")) + "," + label;
        var good = Row(1) + "\n" + Row(2) + "\r\n\n";
        Assert.Equal(2, Digits.LoadCsv(dir.Text("ok.csv", good)).Count); // CRLF and blank lines are fine
        var ok = Digits.LoadCsv(dir.File("ok.csv.gz", Gzip(System.Text.Encoding.UTF8.GetBytes(good))));
        Assert.Equal(new long[] { 1, 2 }, ok.Targets.ToLongArray());

        string p = dir.Text("short.csv", Row(1) + "\n" + "1,2,3\n");
        var few = Assert.Throws<DataFormatException>(() => Digits.LoadCsv(p));
        Assert.Contains($"{p}, line 2: 3 fields, expected 65", few.Message);
        Assert.Equal(2, few.Line);
        var nan = Assert.Throws<DataFormatException>(() => Digits.LoadCsv(dir.Text("nan.csv", Row(1) + "\n" + Row(1, "x7"))));
        Assert.Contains("line 2, field 1: 'x7' is not a number", nan.Message);
        var pixel = Assert.Throws<DataFormatException>(() => Digits.LoadCsv(dir.Text("px.csv", Row(1, "17"))));
        Assert.Contains("line 1, field 1: pixel count 17 is not an integer from 0 to 16", pixel.Message);
        var label = Assert.Throws<DataFormatException>(() => Digits.LoadCsv(dir.Text("lab.csv", Row(10))));
        Assert.Contains("field 65: label 10 is not a digit", label.Message);
        var empty = Assert.Throws<DataFormatException>(() => Digits.LoadCsv(dir.Text("empty.csv", "\n\n")));
        Assert.Contains("no data", empty.Message);
        Assert.Throws<FileNotFoundException>(() => Digits.LoadCsv(Path.Combine(dir.Path, "none.csv")));
    }
}

public class DataSyntheticTests
{
    private static double Fraction(TensorDataset d, long label) => d.Targets.ToLongArray().Count(v => v == label) / (double)d.Count;

    [Fact]
    public void CitiesScatterAroundTheirRealCoordinates()
    {
        var d = Cities.Generate(samples: 800, spread: 0.5, seed: 7);
        Assert.Equal([800, 2], d.Inputs.Shape.ToArray());
        Assert.Equal(["Madrid", "Paris", "Berlin", "Barcelona"], d.ClassNames);
        var x = d.Inputs.ToArray2D();
        var y = d.Targets.ToLongArray();
        for (int c = 0; c < 4; c++)
        {
            var city = Cities.All[c];
            var mine = Enumerable.Range(0, 800).Where(i => y[i] == c).ToArray();
            Assert.Equal(200, mine.Length);
            Assert.InRange(mine.Average(i => x[i, 0]), city.Longitude - 0.15, city.Longitude + 0.15);
            Assert.InRange(mine.Average(i => x[i, 1]), city.Latitude - 0.15, city.Latitude + 0.15);
            Assert.All(mine, i => Assert.True(Math.Abs(x[i, 0] - city.Longitude) < 2.5 && Math.Abs(x[i, 1] - city.Latitude) < 2.5));
        }
        Assert.Equal(d.Inputs.ToArray(), Cities.Generate(samples: 800, spread: 0.5, seed: 7).Inputs.ToArray());
        Assert.NotEqual(d.Inputs.ToArray(), Cities.Generate(samples: 800, spread: 0.5, seed: 8).Inputs.ToArray());
    }

    [Fact]
    public void CitiesLongitudeOnlyUsesThreeCitiesOnALine()
    {
        var d = Cities.Generate(samples: 300, longitudeOnly: true, seed: 1);
        Assert.Equal([300, 1], d.Inputs.Shape.ToArray());
        Assert.Equal(["Madrid", "Paris", "Berlin"], d.ClassNames);
        var both = Cities.Generate(samples: 300, cities: Cities.LongitudeExample, seed: 1);
        Assert.Equal(both.Inputs.Select(1, 0).ToArray(), d.Inputs.Select(1, 0).ToArray());
        Assert.Equal(2.3522, Cities.Find("paris").Longitude);
        Assert.Throws<ArgumentException>(() => Cities.Find("Lisbon"));
    }

    [Fact]
    public void TangledBorderFollowsItsRuleWithEnclaves()
    {
        var d = TangledBorder.Generate(samples: 4000, seed: 3);
        Assert.Equal([4000, 2], d.Inputs.Shape.ToArray());
        var x = d.Inputs.ToArray2D();
        var y = d.Targets.ToLongArray();
        for (int i = 0; i < 4000; i++)
        {
            Assert.InRange(x[i, 0], -1f, 1f);
            Assert.Equal(TangledBorder.Label(x[i, 0], x[i, 1]), y[i]);
        }
        Assert.InRange(Fraction(d, 0), 0.5, 0.68);
        Assert.Equal(1, TangledBorder.Label(0, 0.95));     // north: the Netherlands
        Assert.Equal(0, TangledBorder.Label(0, -0.95));    // south: Belgium
        Assert.Equal(0, TangledBorder.Label(-0.55, 0.60)); // Belgian enclave in the north
        Assert.Equal(0, TangledBorder.Label(0.20, 0.70));  // the big Belgian enclave ...
        Assert.Equal(1, TangledBorder.Label(0.34, 0.55));  // ... and the Dutch enclave inside it
        Assert.Equal(1, TangledBorder.Label(-0.20, -0.60)); // Dutch enclave in the south
        // Enough samples land in the enclaves for a model to have to learn them.
        int inEnclave = Enumerable.Range(0, 4000).Count(i =>
            TangledBorder.Enclaves.Any(e => Math.Pow(x[i, 0] - e.X, 2) + Math.Pow(x[i, 1] - e.Y, 2) < e.Radius * e.Radius));
        Assert.InRange(inEnclave, 200, 800);
        Assert.Equal(d.Inputs.ToArray(), TangledBorder.Generate(samples: 4000, seed: 3).Inputs.ToArray());
    }

    [Fact]
    public void SpiralsCirclesAndXorHaveTheirShapesAndBalance()
    {
        var s = Spirals.Generate(samples: 301, arms: 3, seed: 1);
        Assert.Equal([301, 2], s.Inputs.Shape.ToArray());
        Assert.Equal([101, 100, 100], Enumerable.Range(0, 3).Select(a => (int)Math.Round(Fraction(s, a) * 301)));
        var sx = s.Inputs.ToArray2D();
        for (int i = 0; i < 301; i++) Assert.True(sx[i, 0] * sx[i, 0] + sx[i, 1] * sx[i, 1] <= 1.0001);
        Assert.Equal(s.Inputs.ToArray(), Spirals.Generate(samples: 301, arms: 3, seed: 1).Inputs.ToArray());
        Assert.NotEqual(s.Inputs.ToArray(), Spirals.Generate(samples: 301, arms: 3, seed: 2).Inputs.ToArray());

        var c = Circles.Generate(samples: 400, factor: 0.5, noise: 0.05, seed: 1);
        Assert.Equal(0.5, Fraction(c, 0));
        var cx = c.Inputs.ToArray2D();
        var cy = c.Targets.ToLongArray();
        double R(int i) => Math.Sqrt(cx[i, 0] * cx[i, 0] + cx[i, 1] * cx[i, 1]);
        Assert.InRange(Enumerable.Range(0, 400).Where(i => cy[i] == 0).Average(R), 0.97, 1.03);
        Assert.InRange(Enumerable.Range(0, 400).Where(i => cy[i] == 1).Average(R), 0.47, 0.53);

        var x = Xor.Generate(samples: 400, seed: 1);
        Assert.Equal(0.5, Fraction(x, 1));
        var xx = x.Inputs.ToArray2D();
        var xy = x.Targets.ToLongArray();
        int agree = Enumerable.Range(0, 400).Count(i => (xx[i, 0] * xx[i, 1] < 0 ? 1 : 0) == xy[i]);
        Assert.True(agree > 380, $"{agree} of 400 labels match the sign rule");
        Assert.Throws<ArgumentOutOfRangeException>(() => Spirals.Generate(arms: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Circles.Generate(factor: 1.5));
    }
}

public class DataTextTests
{
    [Fact]
    public void TinyShakespeareVocabularyAndNanoGptSplit()
    {
        var corpus = TextCorpus.Load(Shared("tinyshakespeare", "input.txt"));
        Assert.Equal(65, corpus.VocabularySize);
        Assert.Equal("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", corpus.Characters);
        Assert.Equal(1115394, corpus.Tokens.Length);
        Assert.StartsWith("First Citizen:", corpus.Text);
        var (train, val) = corpus.Split();
        Assert.Equal(1003854, train.Length);
        Assert.Equal(111540, val.Length);
        Assert.Equal(corpus.Tokens[1003854], val[0]);
        var ids = corpus.Encode("hii there");
        Assert.Equal("hii there", corpus.Decode(ids));
        Assert.Equal(corpus.Tokens[..14], corpus.Encode("First Citizen:"));
        var ex = Assert.Throws<ArgumentException>(() => corpus.Encode("café"));
        Assert.Contains("'é' (U+00E9) at position 3", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => corpus.Decode([65]));
    }

    [Fact]
    public void WindowsGiveContextsAndNextTokens()
    {
        int[] tokens = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        var d = new CharWindowDataset(tokens, 3);
        Assert.Equal(7, d.Count);
        var (x, y) = d[2];
        Assert.Equal(new long[] { 2, 3, 4 }, x.ToLongArray());
        Assert.Equal(5, y.GetLong());
        var seq = new CharWindowDataset(tokens, 3, sequenceTargets: true);
        Assert.Equal(new long[] { 3, 4, 5 }, seq[2].Target.ToLongArray());
        var loader = new DataLoader(d, 4);
        var shapes = loader.Select(b => $"{b.Input.Shape} {b.Target.Shape}").ToList();
        Assert.Equal(["[4, 3] [4]", "[3, 3] [3]"], shapes);
        var batch = new DataLoader(seq, 2, shuffle: true, seed: 5).First();
        Assert.Equal([2, 3], batch.Target.Shape.ToArray());
        var ex = Assert.Throws<ArgumentException>(() => new CharWindowDataset([1, 2, 3], 3));
        Assert.Contains("3 tokens are too few for a context of 3", ex.Message);

        var corpus = TextCorpus.FromText("hello world");
        var w = new CharWindowDataset(corpus.Tokens, 4);
        Assert.Equal("o", corpus.Decode([(int)w[0].Target.GetLong()]));
    }

    [Fact]
    public void BadTextFilesGiveByteOffsets()
    {
        using var dir = new DataTempDir();
        var bad = Assert.Throws<DataFormatException>(() => TextCorpus.Load(dir.File("bad.txt", [(byte)'a', (byte)'b', (byte)'\n', 0xFF, (byte)'c'])));
        Assert.Equal(3, bad.Offset);
        Assert.Equal(2, bad.Line);
        Assert.Contains("invalid UTF-8 (byte 0xFF) at byte 3 (line 2)", bad.Message);
        var cut = Assert.Throws<DataFormatException>(() => TextCorpus.Load(dir.File("cut.txt", [(byte)'a', 0xC3])));
        Assert.Equal(1, cut.Offset);
        Assert.Contains("ends inside a multi-byte UTF-8 sequence", cut.Message);
        var empty = Assert.Throws<DataFormatException>(() => TextCorpus.Load(dir.File("empty.txt", [])));
        Assert.Contains("empty", empty.Message);
        Assert.Throws<DataFormatException>(() => TextCorpus.Load(dir.File("bom.txt", [0xEF, 0xBB, 0xBF])));
        Assert.Throws<FileNotFoundException>(() => TextCorpus.Load(Path.Combine(dir.Path, "missing.txt")));

        // Non-ASCII text: the BOM is skipped, the vocabulary sorted by code point, emoji stay one token.
        var uni = TextCorpus.Load(dir.File("u.txt", [0xEF, 0xBB, 0xBF, .. System.Text.Encoding.UTF8.GetBytes("éa😀b")]));
        Assert.Equal("abé😀", uni.Characters);
        Assert.Equal([2, 0, 3, 1], uni.Tokens);
        Assert.Equal("éa😀b", uni.Decode(uni.Tokens));
    }

    [Fact]
    public void NamesWithABoundaryTokenGiveMakemoreBigrams()
    {
        var names = WordCorpus.Load(Shared("names", "names.txt"));
        Assert.Equal(32033, names.Words.Count);
        Assert.Equal("emma", names.Words[0]);
        Assert.Equal(27, names.VocabularySize);
        Assert.Equal(".abcdefghijklmnopqrstuvwxyz", names.Characters);
        Assert.Equal([5, 13, 13, 1], names.Encode("emma"));
        Assert.Equal(".emma.", names.Decode([0, 5, 13, 13, 1, 0]));

        var w3 = names.Windows(3, start: 0, count: 1);
        Assert.Equal([5, 3], w3.Inputs.Shape.ToArray());
        Assert.Equal(new long[] { 0, 0, 0, 0, 0, 5, 0, 5, 13, 5, 13, 13, 13, 13, 1 }, w3.Inputs.ToLongArray());
        Assert.Equal(new long[] { 5, 13, 13, 1, 0 }, w3.Targets.ToLongArray());

        // A context of one token gives every bigram; their +1-smoothed NLL is makemore's 2.4546.
        var bigrams = names.Windows(1);
        Assert.Equal(228146, bigrams.Count);
        var counts = new double[27, 27];
        for (int a = 0; a < 27; a++) for (int b = 0; b < 27; b++) counts[a, b] = 1;
        var prev = bigrams.Inputs.ToLongArray();
        var next = bigrams.Targets.ToLongArray();
        for (int i = 0; i < prev.Length; i++) counts[prev[i], next[i]]++;
        var rowSum = new double[27];
        for (int a = 0; a < 27; a++) for (int b = 0; b < 27; b++) rowSum[a] += counts[a, b];
        double nll = 0;
        for (int i = 0; i < prev.Length; i++) nll -= Math.Log(counts[prev[i], next[i]] / rowSum[prev[i]]);
        TestUtil.Close(2.454577, nll / prev.Length, 1e-6);

        using var dir = new DataTempDir();
        var ex = Assert.Throws<DataFormatException>(() => WordCorpus.Load(dir.Text("w.txt", "ann\nmr.x\n")));
        Assert.Contains("line 2", ex.Message);
    }
}
