using Backprop.NN;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>
/// The fused recurrent ops (RNN, LSTM, GRU): first and second derivatives against finite differences and
/// the fused backward against the recorded one (float64, tiny odd sizes, two stacked layers with initial
/// states), the modules' shapes, names and errors.
/// </summary>
public class RecurrentTests
{
    // B = 2, T = 3, I = 3, H = 2: two layers, each with its own initial state
    private static Tensor Cat(params Tensor[] ts) => Tensor.Concat(ts.Select(t => t.Reshape(-1)).ToArray(), 0);

    [Fact]
    public void RnnGradients()
    {
        var g = new Generator(11);
        Check(a =>
        {
            var (y1, h1) = Functional.Rnn(a[0], a[1], a[2], a[3], a[4], a[5]);
            var (y2, h2) = Functional.Rnn(y1, a[6], a[7], a[8], a[9], a[10]);
            return Cat(y2, h1, h2);
        }, R(g, 2, 3, 3), R(g, 2, 2), R(g, 2, 3), R(g, 2, 2), R(g, 2), R(g, 2),
           R(g, 2, 2), R(g, 2, 2), R(g, 2, 2), R(g, 2), R(g, 2));
    }

    [Fact]
    public void LstmGradients()
    {
        var g = new Generator(12);
        Check(a =>
        {
            var (y1, h1, c1) = Functional.Lstm(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
            var (y2, h2, c2) = Functional.Lstm(y1, a[7], a[8], a[9], a[10], a[11], a[12]);
            return Cat(y2, h1, c1, h2, c2);
        }, R(g, 2, 3, 3), R(g, 2, 2), R(g, 2, 2), R(g, 8, 3), R(g, 8, 2), R(g, 8), R(g, 8),
           R(g, 2, 2), R(g, 2, 2), R(g, 8, 2), R(g, 8, 2), R(g, 8), R(g, 8));
    }

    [Fact]
    public void GruGradients()
    {
        var g = new Generator(13);
        Check(a =>
        {
            var (y1, h1) = Functional.Gru(a[0], a[1], a[2], a[3], a[4], a[5]);
            var (y2, h2) = Functional.Gru(y1, a[6], a[7], a[8], a[9], a[10]);
            return Cat(y2, h1, h2);
        }, R(g, 2, 3, 3), R(g, 2, 2), R(g, 6, 3), R(g, 6, 2), R(g, 6), R(g, 6),
           R(g, 2, 2), R(g, 6, 2), R(g, 6, 2), R(g, 6), R(g, 6));
    }

    [Fact]
    public void WithoutBiasOrInitialStateTheGradientsStillCheck()
    {
        var g = new Generator(14);
        Check(a => Functional.Lstm(a[0], null, null, a[1], a[2]).Output, R(g, 1, 4, 2), R(g, 12, 2), R(g, 12, 3));
        Check(a => Functional.Gru(a[0], null, a[1], a[2]).H, R(g, 3, 2, 2), R(g, 9, 2), R(g, 9, 3));
    }

    [Fact]
    public void ModulesHavePyTorchNamesShapesAndInit()
    {
        var lstm = new Lstm(5, 7, numLayers: 2, generator: new Generator(1));
        var names = lstm.NamedParameters().Select(p => $"{p.Name}:{p.Param.Shape}").ToArray();
        Assert.Equal(new[]
        {
            "weight_ih_l0:[28, 5]", "weight_hh_l0:[28, 7]", "bias_ih_l0:[28]", "bias_hh_l0:[28]",
            "weight_ih_l1:[28, 7]", "weight_hh_l1:[28, 7]", "bias_ih_l1:[28]", "bias_hh_l1:[28]",
        }, names);
        double k = 1 / Math.Sqrt(7);
        foreach (var (_, p) in lstm.NamedParameters())
            Assert.All(p.ToDoubleArray(), v => Assert.InRange(v, -k, k));
        Assert.Equal(3 * 4, new Gru(3, 4).WeightIh(0).Size(0));
        Assert.Equal(4, new Rnn(3, 4, bias: false).WeightHh(0).Size(0));
        Assert.Equal(2, new Rnn(3, 4, bias: false).NamedParameters().Count());

        var x = Tensor.Randn([3, 6, 5], new Generator(2));
        var (y, (h, c)) = lstm.Call((x, null));
        Assert.Equal([3, 6, 7], y.Shape.ToArray());
        Assert.Equal([2, 3, 7], h.Shape.ToArray());
        Assert.Equal([2, 3, 7], c.Shape.ToArray());
        // the outputs' last step is the top layer's final state
        Close(h.Select(0, 1).ToDoubleArray(), y.Select(1, 5), 1e-6);
        // carrying the state over two halves equals one pass over the whole sequence
        var (y1, s1) = lstm.Call((x.Narrow(1, 0, 2), null));
        var (y2, _) = lstm.Call((x.Narrow(1, 2, 4), s1));
        Close(y.Narrow(1, 2, 4).Contiguous().ToDoubleArray(), y2, 1e-5);
    }

    [Fact]
    public void BadShapesSayWhatWasWrong()
    {
        var gru = new Gru(4, 3, numLayers: 2);
        var e = Assert.Throws<ShapeException>(() => gru.Forward(Tensor.Zeros(2, 5, 3)));
        Assert.Equal("Gru: input must be batch-first [B, T, 4], got [2, 5, 3].", e.Message);
        e = Assert.Throws<ShapeException>(() => gru.Call((Tensor.Zeros(2, 5, 4), Tensor.Zeros(1, 2, 3))));
        Assert.Equal("Gru: initial hidden state must be [2, 2, 3] (layers, batch, hidden), got [1, 2, 3].", e.Message);
        e = Assert.Throws<ShapeException>(() => Functional.Lstm(Tensor.Zeros(2, 5, 4), null, null, Tensor.Zeros(12, 5), Tensor.Zeros(12, 3)));
        Assert.Equal("Lstm: weight_ih must be [12, 4] for input [2, 5, 4] and hidden size 3, got [12, 5].", e.Message);
    }
}

/// <summary>A warm training step of the LSTM language model allocates under 16 KB (pooled buffers, no per-step garbage).</summary>
public class RecurrentMemoryTests
{
    [Fact]
    public void AWarmLstmTrainingStepAllocatesUnder16KB()
    {
        var g = new Generator(1);
        const int vocab = 65, batch = 8, context = 16;
        var model = new Backprop.Text.RecurrentLanguageModel(Backprop.Text.RecurrentKind.Lstm, vocab, 16, 32, generator: g);
        var opt = new Backprop.Optim.Adam(model.Parameters(), 2e-3);
        var x = Tensor.RandInt(0, vocab, [batch, context], g);
        var y = Tensor.RandInt(0, vocab, [batch * context], g);
        void Step()
        {
            using var scope = Tensor.Scope();
            var loss = Loss.CrossEntropy(model.Logits(x).Reshape(batch * context, vocab), y);
            opt.ZeroGrad();
            loss.Backward();
            model.DetachState();
            opt.Step();
        }
        for (int i = 0; i < 5; i++) Step();
        long least = long.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            Step();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.True(least < 16 * 1024, $"a warm step allocated {least} bytes");
    }
}

/// <summary>RecurrentLanguageModel: the carried state (truncated BPTT), DetachState, and the decoder that carries the hidden state.</summary>
public class RecurrentLanguageModelTests
{
    [Theory]
    [InlineData(Backprop.Text.RecurrentKind.Lstm)]
    [InlineData(Backprop.Text.RecurrentKind.Gru)]
    [InlineData(Backprop.Text.RecurrentKind.Rnn)]
    public void ChunksWithCarriedStateEqualOnePassAndTheDecoderAgrees(Backprop.Text.RecurrentKind kind)
    {
        var g = new Generator(3);
        var model = new Backprop.Text.RecurrentLanguageModel(kind, 7, 4, 5, numLayers: 2, generator: g);
        var tokens = Tensor.RandInt(0, 7, [2, 6], g);
        var full = model.Logits(tokens).Detach();
        Assert.Equal([2, 6, 7], full.Shape.ToArray());
        model.ResetState();
        var a = model.Logits(tokens.Narrow(1, 0, 3)).Detach();
        model.DetachState();
        var b = model.Logits(tokens.Narrow(1, 3, 3)).Detach();
        TestUtil.Close(full.Narrow(1, 0, 3).Contiguous().ToDoubleArray(), a, 1e-5);
        TestUtil.Close(full.Narrow(1, 3, 3).Contiguous().ToDoubleArray(), b, 1e-5);

        var decoder = model.StartDecoding(maxContext: 3);
        var ids = tokens.ToLongArray();
        for (int t = 0; t < 6; t++)
            TestUtil.Close(full.Select(0, 0).Select(0, t).ToDoubleArray(), decoder.Append(ids[t]), 1e-5);
    }

    [Fact]
    public void DetachStateLetsTheNextChunkBackpropAlone()
    {
        var g = new Generator(4);
        var model = new Backprop.Text.RecurrentLanguageModel(Backprop.Text.RecurrentKind.Lstm, 7, 4, 5, generator: g);
        var x = Tensor.RandInt(0, 7, [3, 4], g);
        var y = Tensor.RandInt(0, 7, [12], g);
        Tensor Loss_() => Loss.CrossEntropy(model.Logits(x).Reshape(12, 7), y);
        Loss_().Backward();
        model.DetachState();
        Loss_().Backward();                                        // stops at the detached state
        Assert.ThrowsAny<Exception>(() => Loss_().Backward());     // not detached: reaches the previous chunk's freed graph
    }
}
