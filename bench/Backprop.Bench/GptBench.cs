using System.Diagnostics;
using Backprop.NN;
using Backprop.Text;

namespace Backprop.Bench;

/// <summary>
/// `gpt-decode [--context 256] [--tokens 256]`: generation speed of the GPT (width 128, 4 layers, 4 heads,
/// vocab 65) per token with the key/value cache and without it (every token reruns the whole window),
/// once the context is full. `attention-memory [--t 4096]`: bytes the fused attention op allocates for
/// forward and backward at [1, 4, T, 32] against the naive formulation's single [1, 4, T, T] score matrix.
/// </summary>
internal static class GptBench
{
    private static int Arg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
    }

    public static int Decode(string[] args)
    {
        int context = Arg(args, "--context", 256), tokens = Arg(args, "--tokens", 256);
        var model = new Gpt(65, context, 4, 128, 4, generator: new Generator(1));
        model.Eval();
        var g = new Generator(2);
        var prompt = Enumerable.Range(0, context).Select(_ => (long)g.NextInt(65)).ToArray();
        double Rate(IDecoder dec)
        {
            foreach (var t in prompt) dec.Append(t); // the window is full from here on
            for (int i = 0; i < 8; i++) dec.Append(g.NextInt(65)); // warm-up
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < tokens; i++) dec.Append(g.NextInt(65));
            return tokens / sw.Elapsed.TotalSeconds;
        }
        double cached = Rate(model.StartDecoding(context));
        double full = Rate(new FullContextDecoder(model, context));
        Console.WriteLine($"{{\"benchmark\": \"gpt-decode\", \"context\": {context}, \"tokens\": {tokens}, \"threads\": {Threads.Count}, " +
                          $"\"cached_tokens_per_second\": {cached:F1}, \"uncached_tokens_per_second\": {full:F1}, \"speedup\": {cached / full:F2}}}");
        return 0;
    }

    public static int AttentionMemory(string[] args)
    {
        int t = Arg(args, "--t", 4096);
        const int heads = 4, dim = 32;
        var g = new Generator(3);
        var q = Tensor.Randn([1, heads, t, dim], g).RequiresGrad_();
        var k = Tensor.Randn([1, heads, t, dim], g).RequiresGrad_();
        var v = Tensor.Randn([1, heads, t, dim], g).RequiresGrad_();
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var sw = Stopwatch.StartNew();
        Functional.ScaledDotProductAttention(q, k, v, causal: true).Sum().Backward();
        double seconds = sw.Elapsed.TotalSeconds;
        long bytes = GC.GetTotalAllocatedBytes(precise: true) - before;
        long qkvBytes = 3L * heads * t * dim * 4, scores = (long)heads * t * t * 4;
        Console.WriteLine($"{{\"benchmark\": \"attention-memory\", \"shape\": [1, {heads}, {t}, {dim}], \"allocated_bytes\": {bytes}, " +
                          $"\"q_k_v_bytes\": {qkvBytes}, \"one_score_matrix_bytes\": {scores}, \"seconds\": {seconds:F2}}}");
        return 0;
    }
}
