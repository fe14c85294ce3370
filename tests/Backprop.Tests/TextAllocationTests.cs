using Backprop.NN;
using Backprop.Optim;
using Backprop.Text;

namespace Backprop.Tests;

/// <summary>
/// Warm training steps of the language models allocate under 16 KB (issue 13): pooled buffers, interned
/// shapes, small graph nodes and tensors, no per-step strings, closures or LINQ. The bytes do not depend
/// on the widths, so small models stand in for the benchmark ones (<c>backprop bench model gpt|lstm --json</c>
/// reports the same allocated_bytes_per_step). Non-parallel: nothing else allocates on the thread meanwhile.
/// </summary>
[Collection("Threads")]
public class TextAllocationTests
{
    private static long WarmStepBytes(Action step)
    {
        for (int i = 0; i < 5; i++) step();
        long least = long.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            step();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return least;
    }

    [Fact]
    public void AWarmStepOfATwoLayerLstmLanguageModelAllocatesUnder16KB()
    {
        var g = new Generator(1);
        const int vocab = 65, batch = 8, context = 16;
        var model = new RecurrentLanguageModel(RecurrentKind.Lstm, vocab, 16, 32, numLayers: 2, generator: g);
        var opt = new Adam(model.Parameters(), 2e-3);
        var x = Tensor.RandInt(0, vocab, [batch, context], g);
        var y = Tensor.RandInt(0, vocab, [batch * context], g);
        long bytes = WarmStepBytes(() =>
        {
            using var scope = Tensor.Scope();
            var loss = Loss.CrossEntropy(model.Logits(x).Reshape(batch * context, vocab), y);
            opt.ZeroGrad();
            loss.Backward();
            model.DetachState();
            opt.Step();
        });
        Assert.True(bytes < 16 * 1024, $"a warm step of a 2-layer LSTM LM allocated {bytes} bytes");
    }

    [Fact]
    public void AWarmStepOfTheFourLayerBenchmarkGptAllocatesUnder16KB()
    {
        // The benchmark GPT's shape (4 layers, 4 heads, context = block size, no dropout, AdamW), narrower.
        var g = new Generator(2);
        const int vocab = 65, batch = 4, context = 16;
        var model = new Gpt(vocab, context, layers: 4, width: 32, heads: 4, generator: g);
        var opt = new AdamW(model.Parameters(), 1e-3);
        var x = Tensor.RandInt(0, vocab, [batch, context], g);
        var y = Tensor.RandInt(0, vocab, [batch * context], g);
        long bytes = WarmStepBytes(() =>
        {
            using var scope = Tensor.Scope();
            var loss = Loss.CrossEntropy(model.Logits(x).Reshape(batch * context, vocab), y);
            opt.ZeroGrad();
            loss.Backward();
            opt.Step();
        });
        Assert.True(bytes < 16 * 1024, $"a warm step of a 4-layer GPT allocated {bytes} bytes");
    }
}
