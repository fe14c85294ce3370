using Backprop.Autograd;
using Backprop.Backends;
using Backprop.NN;
using Backprop.Optim;
using Backprop.Text;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>LayerNorm, fused attention, the transformer block and the GPT: gradients, backends, decoding.</summary>
public class TransformerTests
{
    private static Tensor Naive(Tensor q, Tensor k, Tensor v, bool causal) => Functional.AttentionWeights(q, k, causal).MatMul(v);

    [Fact]
    public void LayerNormGradientsCheck()
    {
        var g = new Generator(1);
        Check(x => Functional.LayerNorm(x[0], x[1], x[2]), R(g, 3, 5), R(g, 5), R(g, 5));
        Check(x => Functional.LayerNorm(x[0], x[1], null, 1e-3), R(g, 2, 3, 7), R(g, 7));
        Check(x => Functional.LayerNorm(x[0], null, null), R(g, 4, 3).Transpose(0, 1)); // a strided input
    }

    [Fact]
    public void LayerNormForwardMatchesItsDefinition()
    {
        var g = new Generator(2);
        var x = R(g, 4, 6);
        var w = R(g, 6);
        var b = R(g, 6);
        var mu = x.Mean(-1, keepDim: true);
        var expected = (x - mu) / ((x - mu).Pow(2).Mean(-1, keepDim: true) + 1e-5).Sqrt() * w + b;
        Close(expected.ToDoubleArray(), Functional.LayerNorm(x, w, b), 1e-12);
        var m = new NN.LayerNorm(6);
        Assert.Equal(["weight", "bias"], m.NamedParameters().Select(p => p.Name));
        Assert.Contains("LayerNorm: weight must have shape [6]", Assert.Throws<ShapeException>(() => Functional.LayerNorm(x, R(g, 5), null)).Message);
        Assert.Contains("expected input of shape [..., 6]", Assert.Throws<ShapeException>(() => m.Forward(Tensor.Zeros(2, 5))).Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AttentionGradientsCheck(bool causal)
    {
        var g = new Generator(causal ? 3 : 4);
        Check(x => Functional.ScaledDotProductAttention(x[0], x[1], x[2], causal), R(g, 2, 2, 5, 3), R(g, 2, 2, 5, 3), R(g, 2, 2, 5, 4));
        // fewer queries than keys (the cache's shape), and a strided query
        Check(x => Functional.ScaledDotProductAttention(x[0].Transpose(1, 2), x[1], x[2], causal, scale: 0.7),
            R(g, 1, 3, 2, 2), R(g, 1, 2, 4, 2), R(g, 1, 2, 4, 3));
    }

    [Fact]
    public void AttentionAcrossSeveralKeyBlocksMatchesTheNaiveFormula()
    {
        // 67 and 70 keys: more than one block of 64, the last block partial
        var g = new Generator(5);
        foreach (var (tq, tk, causal) in new[] { (70, 70, true), (67, 67, false), (3, 70, true) })
        {
            var q = R(g, 1, 2, tq, 5).RequiresGrad_();
            var k = R(g, 1, 2, tk, 5).RequiresGrad_();
            var v = R(g, 1, 2, tk, 6).RequiresGrad_();
            var y = Functional.ScaledDotProductAttention(q, k, v, causal);
            var yn = Naive(q, k, v, causal);
            Close(yn.ToDoubleArray(), y, 1e-12);
            var r = Tensor.Randn([1, 2, tq, 6], g, DType.Float64);
            var fused = Gradients.Compute([y], [q, k, v], [r]);
            var naive = Gradients.Compute([yn], [q, k, v], [r]);
            for (int i = 0; i < 3; i++) Close(naive[i]!.ToDoubleArray(), fused[i]!, 1e-11);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PackedSelfAttentionChecksAndEqualsTheSplitForm(bool causal)
    {
        var g = new Generator(causal ? 13 : 14);
        Check(x => Functional.SelfAttention(x[0], 2, causal), R(g, 2, 5, 12));
        var qkv = R(g, 2, 69, 12); // 69 positions: a second, partial key block
        var split = qkv.View(2, 69, 3, 2, 2);
        var expected = Naive(split.Select(2, 0).Transpose(1, 2), split.Select(2, 1).Transpose(1, 2), split.Select(2, 2).Transpose(1, 2), causal)
            .Transpose(1, 2).Reshape(2, 69, 4);
        Close(expected.ToDoubleArray(), Functional.SelfAttention(qkv, 2, causal), 1e-12);
        FusedAndRecordedBackwardAgree(x => Functional.SelfAttention(x[0], 2, causal), [qkv]);
    }

    [Fact]
    public void AttentionIsStableForLargeScores()
    {
        var q = Tensor.Full([1, 1, 3, 2], 300.0, DType.Float32);
        var k = Tensor.FromArray(new float[] { 1, 1, 2, 2, 0, 0 }, [1, 1, 3, 2]);
        var v = Tensor.FromArray(new float[] { 1, 0, 0, 1, 5, 5 }, [1, 1, 3, 2]);
        var y = Functional.ScaledDotProductAttention(q, k, v, causal: false, scale: 1);
        Close(new double[] { 0, 1, 0, 1, 0, 1 }, y, 1e-6); // exp(1200) would overflow without the running max
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CpuAndReferenceBackendsAgree(bool causal)
    {
        var g = new Generator(6);
        Tensor[] inputs = [Tensor.Randn([1, 67, 2, 9], g), Tensor.Randn([1, 2, 67, 9], g), Tensor.Randn([1, 2, 67, 10], g), // 8 SIMD lanes and a tail
            Tensor.Randn([4, 9], g), Tensor.Randn([9], g), Tensor.Randn([9], g)];
        Tensor[] Run(Device d)
        {
            var xs = inputs.Select(t => t.To(d).Detach().RequiresGrad_()).ToArray();
            var y = Functional.ScaledDotProductAttention(xs[0].Transpose(1, 2), xs[1], xs[2], causal);
            var z = Functional.LayerNorm(xs[3], xs[4], xs[5]);
            var r1 = Tensor.Randn([.. y.Shape.AsSpan()], new Generator(8)).To(d);
            var r2 = Tensor.Randn([4, 9], new Generator(9)).To(d);
            ((y * r1).Sum() + (z * r2).Sum()).Backward();
            return [y, z, .. xs.Select(x => x.Grad!)];
        }
        var cpu = Run(Device.Cpu);
        var reference = Run(Device.Reference);
        for (int i = 0; i < cpu.Length; i++) Close(reference[i].ToDoubleArray(), cpu[i], 2e-5);
    }

    [Fact]
    public void AttentionErrorsNameTheShapes()
    {
        var a = Tensor.Zeros(1, 2, 3, 4);
        Assert.Contains("must be 4-D", Assert.Throws<ShapeException>(() => Functional.ScaledDotProductAttention(Tensor.Zeros(2, 3, 4), a, a)).Message);
        Assert.Contains("at least as many keys as queries", Assert.Throws<ShapeException>(() =>
            Functional.ScaledDotProductAttention(Tensor.Zeros(1, 2, 5, 4), a, a, causal: true)).Message);
        Assert.Contains("must be a positive multiple", Assert.Throws<ArgumentException>(() => new MultiHeadAttention(10, 3)).Message);
    }

    [Fact]
    public void TheFusedAttentionsExtraMemoryGrowsLinearlyInT()
    {
        // Fresh buffer sizes come from new arrays, so the bytes allocated bound every buffer the op holds at once.
        long Bytes(int t, bool fused)
        {
            var g = new Generator(t);
            var q = Tensor.Randn([1, 2, t, 16], g).RequiresGrad_();
            var k = Tensor.Randn([1, 2, t, 16], g).RequiresGrad_();
            var v = Tensor.Randn([1, 2, t, 16], g).RequiresGrad_();
            using var _ = Threads.Use(1);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var y = fused ? Functional.ScaledDotProductAttention(q, k, v, true) : Naive(q, k, v, true);
            y.Sum().Backward();
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        long f1 = Bytes(257, true), f2 = Bytes(514, true), n1 = Bytes(259, false), n2 = Bytes(518, false);
        // fused: o, lse, dq, dk, dv and the gradients of the inputs, all O(T·D); naive: [T, T] scores
        Assert.True(f2 < 2.6 * f1, $"fused attention allocated {f1} B at T=257 and {f2} B at T=514");
        Assert.True(n2 > 3.2 * n1, $"naive attention allocated {n1} B at T=259 and {n2} B at T=518");
        Assert.True(f2 < 2L * 514 * 514 * 4, $"fused attention at T=514 allocated {f2} B, as much as two 514×514 score matrices");
    }

    private static Gpt SmallGpt(int seed, int vocab = 11, int block = 16, int layers = 2, int width = 8, int heads = 2, double dropout = 0) =>
        new(vocab, block, layers, width, heads, dropout, new Generator((ulong)seed));

    /// <summary>The pre-norm block written out from functional ops; ps are its parameters in the module's order.</summary>
    internal static Tensor BlockFunction(Tensor x, Tensor[] ps, int heads)
    {
        int b = x.Size(0), t = x.Size(1), c = x.Size(2);
        var qkv = Functional.Linear(Functional.LayerNorm(x, ps[0], ps[1]), ps[2], ps[3]).View(b, t, 3, heads, c / heads);
        var a = Functional.ScaledDotProductAttention(qkv.Select(2, 0).Transpose(1, 2), qkv.Select(2, 1).Transpose(1, 2), qkv.Select(2, 2).Transpose(1, 2), causal: true);
        x = x + Functional.Linear(a.Transpose(1, 2).Reshape(b, t, c), ps[4], ps[5]);
        var h = Functional.Linear(Functional.LayerNorm(x, ps[6], ps[7]), ps[8], ps[9], FusedActivation.Gelu);
        return x + Functional.Linear(h, ps[10], ps[11]);
    }

    [Fact]
    public void TransformerBlockGradientsCheck()
    {
        var block = new TransformerBlock(6, 2, generator: new Generator(3), dtype: DType.Float64);
        var names = block.NamedParameters().Select(p => p.Name).ToArray();
        Assert.Equal(["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
            "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"], names);
        var ps = block.Parameters().Select(p => p.Detach().Clone()).ToArray();
        foreach (var p in ps.Where(p => p.Rank == 1)) p.Add_(Tensor.Randn([.. p.Shape.AsSpan()], new Generator(5), DType.Float64), 0.3); // not 1s and 0s
        var x = R(new Generator(4), 2, 3, 6);
        Close(BlockFunction(x, block.Parameters().ToArray(), 2).ToDoubleArray(), block.Forward(x), 1e-12);
        Check(xs => BlockFunction(xs[0], xs[1..], 2), [x, .. ps]);
    }

    [Fact]
    public void GptNamesItsParametersLikeNanoGptAndTiesTheHead()
    {
        var m = SmallGpt(1);
        var names = m.NamedParameters().Select(p => p.Name).ToList();
        Assert.Equal("wte.weight", names[0]);
        Assert.Contains("h.0.ln_1.weight", names);
        Assert.Contains("h.1.attn.c_attn.weight", names);
        Assert.Contains("h.1.mlp.c_fc.bias", names);
        Assert.Contains("ln_f.bias", names);
        Assert.DoesNotContain(names, n => n.Contains("lm_head"));
        var ids = Tensor.FromArray(new long[] { 1, 2, 3, 4, 5, 6 }, [2, 3]);
        var logits = m.Logits(ids);
        Assert.Equal([2, 3, 11], logits.Shape.AsSpan().ToArray());
        Loss.CrossEntropy(logits.Reshape(-1, 11), Tensor.FromArray(new long[] { 2, 3, 4, 5, 6, 7 }, [6])).Backward();
        // token 0 never appears as input: its row's gradient comes only from the tied output projection
        var g0 = m.Wte.Weight.Grad!.Select(0, 0).ToDoubleArray();
        Assert.Contains(g0, v => v != 0);
    }

    [Fact]
    public void AGptStateDictLoadsIntoAFreshModel()
    {
        var a = SmallGpt(8);
        var b = SmallGpt(9);
        b.LoadStateDict(a.StateDict());
        var ids = Tensor.FromArray(new long[] { 1, 2, 3, 4 }, [1, 4]);
        using var _ = Tensor.NoGrad();
        Close(a.Logits(ids).ToDoubleArray(), b.Logits(ids), 0);
        Assert.Contains("gpt: a sequence of 17 tokens does not fit the block size 16", Assert.Throws<ShapeException>(() => a.Logits(Tensor.Zeros([1, 17], DType.Int64))).Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void CachedDecodingGivesTheLogitsOfAFullRecompute()
    {
        var m = SmallGpt(2, block: 12);
        m.Eval();
        var tokens = new long[] { 3, 1, 4, 1, 5, 9, 2, 6, 5, 3 };
        var dec = m.StartDecoding(12);
        for (int t = 0; t < tokens.Length; t++)
        {
            var cached = dec.Append(tokens[t]);
            using var _ = Tensor.NoGrad();
            var full = m.Logits(Tensor.FromArray(tokens[..(t + 1)], [1, t + 1])).Select(0, 0).Select(0, t);
            Close(full.ToDoubleArray(), cached, 1e-5);
        }
        // past the window the cache restarts from the recent half: still the model's prediction for that context
        var cont = new long[] { 7, 8, 9 };
        Tensor last = null!;
        foreach (var c in cont) last = dec.Append(c);
        Assert.Equal([11], last.Shape.AsSpan().ToArray());
        Assert.All(last.ToDoubleArray(), v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public void AWarmGptTrainingStepAllocatesUnder16KB()
    {
        var m = SmallGpt(3, vocab: 17, block: 16, layers: 2, width: 16, heads: 2);
        var opt = new AdamW(m.Parameters(), 1e-3);
        var g = new Generator(4);
        var x = Tensor.RandInt(0, 17, [4, 16], g);
        var y = Tensor.RandInt(0, 17, [64], g);
        void Step()
        {
            using var scope = Tensor.Scope();
            var loss = Loss.CrossEntropy(m.Logits(x).Reshape(64, 17), y);
            opt.ZeroGrad();
            loss.Backward();
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
        Assert.True(least < 16 * 1024, $"a warm GPT step allocated {least} bytes");
    }

    [Fact]
    public void ASmallGptLearnsARepeatingSequenceWithWarmupAndCosineDecay()
    {
        var m = SmallGpt(5, vocab: 5, block: 8, layers: 1, width: 16, heads: 2);
        var opt = new AdamW(m.Parameters(), 1e-2, weightDecay: 0.01);
        var sched = new SequentialLr(opt, [new LinearWarmup(opt, 10, 0.1), new CosineAnnealingLr(opt, 90, 1e-4)], [10]);
        var seq = Enumerable.Range(0, 9).Select(i => (long)(i % 5)).ToArray();
        var x = Tensor.FromArray(seq[..8], [1, 8]);
        var y = Tensor.FromArray(seq[1..], [8]);
        double first = 0, last = 0;
        for (int step = 0; step < 100; step++)
        {
            var loss = Loss.CrossEntropy(m.Logits(x).Reshape(8, 5), y);
            if (step == 0) first = loss.Item();
            last = loss.Item();
            opt.ZeroGrad();
            loss.Backward();
            opt.Step();
            sched.Step();
        }
        Assert.True(last < 0.1 * first, $"loss went from {first} to {last}");
    }
}
