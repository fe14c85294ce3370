using Backprop.NN;
using Backprop.Text;

namespace Backprop.Tests;

public class LanguageModelTests
{
    [Fact]
    public void WindowsAreMakemoresPairsPaddedWithTheBoundary()
    {
        var t = CharTokenizer.FromText("emmaava", '.');   // ".aemv"
        var ds = TextDatasets.NextTokenWindows([t.Encode("emma"), t.Encode("ava")], 3, boundary: 0);
        Assert.Equal(5 + 4, ds.Count);
        string[] contexts = [.. Enumerable.Range(0, ds.Count).Select(i => t.Decode([.. ds[i].Input.ToLongArray().Select(v => (int)v)]))];
        string targets = t.Decode([.. Enumerable.Range(0, ds.Count).Select(i => (int)ds[i].Target.ToLongArray()[0])]);
        Assert.Equal(["...", "..e", ".em", "emm", "mma", "...", "..a", ".av", "ava"], contexts);
        Assert.Equal("emma.ava.", targets);
    }

    [Fact]
    public void PaddedSequencesIgnoreThePadding()
    {
        var ds = TextDatasets.PaddedSequences([[5, 6], [7]], boundary: 0);
        Assert.Equal([0, 5, 6, 0, 7, 0], ds.Inputs.ToLongArray());
        Assert.Equal([5, 6, 0, 7, 0, -1], ds.Targets.ToLongArray());
    }

    [Fact]
    public void BpttStreamsContinueRowByRow()
    {
        int[] tokens = [.. Enumerable.Range(0, 21)];
        var b = new BpttBatches(tokens, batchSize: 2, chunkLength: 3);
        Assert.Equal(3, b.Count);   // 10 tokens per stream
        var (x0, y0) = b[0];
        var (x1, y1) = b[1];
        Assert.Equal([0, 1, 2, 10, 11, 12], x0.ToLongArray());
        Assert.Equal([1, 2, 3, 11, 12, 13], y0.ToLongArray());
        Assert.Equal([3, 4, 5, 13, 14, 15], x1.ToLongArray());
        Assert.Equal([4, 5, 6, 14, 15, 16], y1.ToLongArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => b[3]);
    }

    [Fact]
    public void SplitsAreSeededAndComplete()
    {
        string[] items = [.. Enumerable.Range(0, 100).Select(i => $"n{i}")];
        var (tr, va, te) = TextDatasets.ShuffleSplit(items, 42);
        Assert.Equal((80, 10, 10), (tr.Length, va.Length, te.Length));
        Assert.Equal(items.Order(), tr.Concat(va).Concat(te).Order());
        Assert.Equal(tr, TextDatasets.ShuffleSplit(items, 42).Train);
        Assert.NotEqual(tr, TextDatasets.ShuffleSplit(items, 43).Train);
        var (a, b) = TextDatasets.TailSplit([.. Enumerable.Range(0, 10)], 0.2);
        Assert.Equal([8, 9], b);
        Assert.Equal(8, a.Length);
    }

    [Fact]
    public void FixedWindowModelPassesGradientChecksInFloat64()
    {
        var g = new Generator(7);
        // Repeated ids in and across windows: the table's rows must collect the sum of their uses.
        var windows = Tensor.FromArray(new long[] { 1, 1, 2, 0, 1, 3, 2, 2, 2 }, [3, 3]);
        var target = Tensor.FromArray(new long[] { 3, 0, 1 }, [3]);
        TestUtil.Check(p => Loss.CrossEntropy(FixedWindowLm.Compute(windows, p[0], p[1], p[2], p[3], p[4]), target),
            TestUtil.R(g, 5, 2), TestUtil.R(g, 3, 6), TestUtil.R(g, 3), TestUtil.R(g, 5, 3), TestUtil.R(g, 5));
    }

    [Fact]
    public void EmbeddingRowGradientIsTheSumOverEveryUse()
    {
        var m = new FixedWindowLm(vocabSize: 4, context: 3, embeddingDim: 2, hidden: 5, generator: new Generator(1), dtype: DType.Float64);
        var windows = Tensor.FromArray(new long[] { 1, 1, 2, 1, 3, 3 }, [2, 3]);
        var loss = Loss.CrossEntropy(m.WindowLogits(windows), Tensor.FromArray(new long[] { 0, 2 }, [2]));
        // The gradient of each slot's embedding, from the graph with the lookup cut out.
        var e = Functional.Embedding(windows, m.Embedding.Weight).Detach().RequiresGrad_();
        var hid = m.NamedParameters().ToDictionary(p => p.Name, p => p.Param);
        var h = Functional.Linear(e.Reshape(2, -1), hid["hidden.weight"], hid["hidden.bias"], FusedActivation.Tanh);
        Loss.CrossEntropy(Functional.Linear(h, hid["output.weight"], hid["output.bias"]), Tensor.FromArray(new long[] { 0, 2 }, [2])).Backward();
        var slots = e.Grad!.ToDoubleArray();   // [2, 3, 2]
        m.ZeroGrad();
        loss.Backward();
        var table = m.Embedding.Weight.Grad!.ToDoubleArray();
        long[] ids = windows.ToLongArray();
        for (int row = 0; row < 4; row++)
            for (int d = 0; d < 2; d++)
            {
                double sum = 0;
                for (int s = 0; s < 6; s++) if (ids[s] == row) sum += slots[s * 2 + d];
                TestUtil.Close(sum, table[row * 2 + d], 1e-12);
            }
        Assert.Equal(0.0, table[0]);   // row 0 is never used
    }

    [Fact]
    public void LogitsAtEveryPositionAreTheWindowModelAndTheDecoderAgrees()
    {
        var m = new FixedWindowLm(6, 3, 4, 8, boundary: 0, generator: new Generator(2), dtype: DType.Float64);
        long[] seq = [3, 5, 1, 2, 4];   // not starting at the boundary: the first windows need the padding
        var all = m.Logits(Tensor.FromArray(seq, [1, 5]));   // [1, 5, 6]
        Assert.Equal([1, 5, 6], all.Shape.ToArray());
        var dec = m.StartDecoding(100);
        for (int t = 0; t < seq.Length; t++)
        {
            var w = new long[3];
            for (int k = 0; k < 3; k++) w[k] = t - 2 + k >= 0 ? seq[t - 2 + k] : 0;
            var expected = m.WindowLogits(Tensor.FromArray(w, [1, 3])).ToDoubleArray();
            TestUtil.Close(expected, all.Select(0, 0).Select(0, t), 1e-12);
            TestUtil.Close(expected, dec.Append(seq[t]), 1e-12);
            // The generic decoder that reruns the whole context gives the same logits.
        }
        var full = new FullContextDecoder(m, 100);
        Tensor last = null!;
        foreach (var s in seq) last = full.Append(s);
        TestUtil.Close(all.Select(0, 0).Select(0, 4).ToDoubleArray(), last, 1e-12);
    }
}
