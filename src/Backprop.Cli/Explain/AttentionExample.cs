using Backprop.NN;
using Backprop.Optim;
using Backprop.Text;

namespace Backprop.Cli.Explain;

/// <summary>
/// Attention, in numbers: a small GPT trained for a few seconds on sentences "the capital of X is Y ." (word
/// level) is given the prompt "the capital of france is"; it predicts "paris", and the attention weights show
/// which earlier words each head looked at to do it (the picture of a language model attending from "is"
/// back to "france"). Every weight printed is the trained model's.
/// </summary>
public sealed class AttentionExample : WorkedExample
{
    /// <inheritdoc/>
    public override string Name => "attention";

    /// <inheritdoc/>
    public override string Summary => "a small GPT completes 'the capital of france is': which earlier words each head attends to";

    private static readonly (string Country, string Capital)[] Facts =
    [
        ("france", "paris"), ("italy", "rome"), ("spain", "madrid"), ("germany", "berlin"), ("japan", "tokyo"),
        ("egypt", "cairo"), ("peru", "lima"), ("kenya", "nairobi"), ("greece", "athens"), ("norway", "oslo"),
    ];

    /// <summary>What the run computed: the prompt's words, the prediction, and weights[layer][head][query][key].</summary>
    public sealed record Result(string[] Prompt, string Predicted, double Probability, int Steps, double FirstLoss, double FinalLoss,
        double[][][][] Weights, int Layers, int Heads, int Width);

    private const string DefaultPrompt = "the capital of france is";
    private const int DefaultSteps = 300;

    // the run is deterministic (seeded, one thread): the default one is computed once per process
    private static readonly Lazy<Result> DefaultRun = new(() => Train(DefaultPrompt, DefaultSteps));

    /// <summary>Trains the model (seeded, deterministic) and reads its attention on the prompt.</summary>
    public Result Compute(string prompt = DefaultPrompt, int steps = DefaultSteps) =>
        prompt == DefaultPrompt && steps == DefaultSteps ? DefaultRun.Value : Train(prompt, steps);

    private static Result Train(string prompt, int steps)
    {
        var words = new List<string>();
        var vocab = new Dictionary<string, int>();
        int Id(string w)
        {
            if (!vocab.TryGetValue(w, out int i)) { i = vocab.Count; vocab[w] = i; words.Add(w); }
            return i;
        }
        foreach (var (c, cap) in Facts) foreach (var w in $"the capital of {c} is {cap} .".Split(' ')) Id(w);
        const int context = 8, batch = 16, layers = 2, width = 32, heads = 2;
        var g = new Generator(7);
        using var threads = Threads.Use(1); // the same numbers on every machine
        var model = new Gpt(vocab.Count, context, layers, width, heads, generator: g);
        // PyTorch's default initialization (embeddings N(0, 1), weights U(±1/√fan_in)) rather than GPT-2's small
        // N(0, 0.02): with it this tiny model leaves its plateau in a few hundred steps instead of thousands
        foreach (var (pname, p) in model.NamedParameters())
        {
            if (pname.StartsWith("wte") || pname.StartsWith("wpe")) Init.Normal_(p, 0, 1, g);
            else if (p.Rank == 2) Init.Uniform_(p, -1 / Math.Sqrt(p.Size(1)), 1 / Math.Sqrt(p.Size(1)), g);
        }
        var opt = new AdamW(model.Parameters(), lr: 1e-2, weightDecay: 0.01);
        var sched = new SequentialLr(opt, [new LinearWarmup(opt, 15, 0.1), new CosineAnnealingLr(opt, steps - 15, 1e-3)], [15]);
        // a stream of shuffled sentences; each batch row is a window of it
        var stream = new List<long>();
        for (int r = 0; r < 60; r++)
            foreach (int f in Enumerable.Range(0, Facts.Length).OrderBy(_ => g.NextInt(1 << 30)))
                foreach (var w in $"the capital of {Facts[f].Country} is {Facts[f].Capital} .".Split(' ')) stream.Add(vocab[w]);
        var x = new long[batch * context];
        var y = new long[batch * context];
        double first = 0, last = 0;
        for (int s = 0; s < steps; s++)
        {
            for (int b = 0; b < batch; b++)
            {
                int start = g.NextInt(stream.Count - context - 1);
                for (int t = 0; t < context; t++) { x[b * context + t] = stream[start + t]; y[b * context + t] = stream[start + t + 1]; }
            }
            using var scope = Tensor.Scope();
            var loss = Loss.CrossEntropy(model.Logits(Tensor.FromArray(x, [batch, context])).Reshape(-1, vocab.Count), Tensor.FromArray(y, [batch * context]));
            last = loss.ItemDouble();
            if (s == 0) first = last;
            opt.ZeroGrad();
            loss.Backward();
            opt.Step();
            sched.Step();
        }
        model.Eval();
        var promptWords = prompt.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        foreach (var w in promptWords)
            if (!vocab.ContainsKey(w)) throw new CliException($"explain attention: the word '{w}' is not in the model's vocabulary ({string.Join(" ", words)}).");
        var ids = Tensor.FromArray(promptWords.Select(w => (long)vocab[w]).ToArray(), [1, promptWords.Length]);
        double[] probs;
        using (Tensor.NoGrad()) probs = model.Logits(ids).Select(0, 0).Select(0, promptWords.Length - 1).Softmax(-1).ToDoubleArray();
        int best = Array.IndexOf(probs, probs.Max());
        var maps = model.AttentionMaps(ids);
        int n = promptWords.Length;
        var weights = maps.Select(m =>
        {
            var a = m.ToDoubleArray(); // [1, heads, n, n]
            return Enumerable.Range(0, heads).Select(h => Enumerable.Range(0, n).Select(i => a.AsSpan((h * n + i) * n, n).ToArray()).ToArray()).ToArray();
        }).ToArray();
        return new Result(promptWords, words[best], probs[best], steps, first, last, weights, layers, heads, width);
    }

    /// <inheritdoc/>
    public override void Run(TextWriter o)
    {
        var r = Compute();
        int n = r.Prompt.Length;
        o.WriteLine("Attention: which earlier words each head of a small GPT looks at");
        o.WriteLine();
        o.WriteLine($"  model     GPT, {r.Layers} layers, width {r.Width}, {r.Heads} heads per layer, causal self-attention");
        o.WriteLine($"  training  {r.Steps} AdamW steps on \"the capital of X is Y .\" for {Facts.Length} countries (word level);");
        o.WriteLine($"            loss {F(r.FirstLoss)} -> {F(r.FinalLoss)} nats per word");
        o.WriteLine($"  prompt    \"{string.Join(" ", r.Prompt)}\"");
        o.WriteLine($"  next word \"{r.Predicted}\" (probability {F(r.Probability)})");
        o.WriteLine();
        o.WriteLine($"  From the last word, \"{r.Prompt[^1]}\", each head's weights over the words it may see:");
        for (int l = 0; l < r.Layers; l++)
            for (int h = 0; h < r.Heads; h++)
            {
                var w = r.Weights[l][h][n - 1];
                o.WriteLine($"    layer {l + 1} head {h + 1}: " + string.Join("  ", Enumerable.Range(0, n).Select(j => $"{r.Prompt[j]} {F(w[j], 2)}")));
            }
        o.WriteLine();
        o.WriteLine("  Every position, top weights (a row of softmax(q.k / sqrt(d)) over positions <= its own):");
        for (int l = 0; l < r.Layers; l++)
            for (int h = 0; h < r.Heads; h++)
            {
                o.WriteLine($"    layer {l + 1} head {h + 1}");
                for (int i = 0; i < n; i++)
                {
                    var row = r.Weights[l][h][i];
                    var top = Enumerable.Range(0, i + 1).OrderByDescending(j => row[j]).Take(3).Select(j => $"{r.Prompt[j]} {F(row[j], 2)}");
                    o.WriteLine($"      {r.Prompt[i],-8} -> {string.Join(", ", top)}");
                }
            }
        o.WriteLine();
        o.WriteLine("  Each weight is how much of that word's value vector the head mixes into this position's output;");
        o.WriteLine("  a head that puts its weight on the country is how the model knows which capital comes next.");
    }
}
