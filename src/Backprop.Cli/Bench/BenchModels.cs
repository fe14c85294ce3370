using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Cli.Bench;

/// <summary>
/// The models of the side-by-side comparison with PyTorch (bench/compare): the same shapes, batch
/// sizes, optimizers and synthetic data on both sides. Each returns a step function over a fixed
/// pool of batches.
/// </summary>
public static partial class BenchModels
{
    /// <summary>A benchmark model: one training step on batch i of its pool, and how many samples (or tokens) a step consumes.</summary>
    public sealed record Model(string Name, string Description, int SamplesPerStep, string Unit, Action<int> Step);

    /// <summary>Names accepted by <see cref="Create"/>.</summary>
    public static readonly string[] Names = ["mlp-small", "mlp-256", "window-lm", "gpt", "lstm", "cnn"];

    /// <summary>Batches in the data pool (steps cycle through them).</summary>
    public const int Pool = 64;

    /// <summary>Builds the named model with seeded weights and data.</summary>
    public static Model Create(string name)
    {
        var g = new Generator(1);
        switch (name)
        {
            case "mlp-small":
                return Mlp(name, "MLP 784-16-16-10, sigmoid, SGD lr 0.1, batch 10", [784, 16, 16, 10], () => new Sigmoid(), 10, p => new Sgd(p, 0.1), g);
            case "mlp-256":
                return Mlp(name, "MLP 784-256-128-10, ReLU, Adam lr 1e-3, batch 128", [784, 256, 128, 10], () => new Relu(), 128, p => new Adam(p, 1e-3), g);
            case "window-lm":
                {
                    // Bengio-style fixed-window language model: 8 previous characters → embedding 32 each →
                    // tanh hidden layer of 256 → logits over 65 characters; Adam, batch 128.
                    const int vocab = 65, context = 8, embed = 32, hidden = 256, batch = 128;
                    var emb = new Embedding(vocab, embed, g);
                    var mlp = new Sequential(new Linear(context * embed, hidden, generator: g), new Tanh(), new Linear(hidden, vocab, generator: g));
                    var opt = new Adam(emb.Parameters().Concat(mlp.Parameters()), lr: 1e-3);
                    var xs = Enumerable.Range(0, Pool).Select(_ => Tensor.RandInt(0, vocab, [batch, context], g)).ToArray();
                    var ys = Enumerable.Range(0, Pool).Select(_ => Tensor.RandInt(0, vocab, [batch], g)).ToArray();
                    return new Model(name, "fixed-window LM: 8 chars x embedding 32 -> tanh 256 -> 65, Adam lr 1e-3, batch 128", batch, "tokens/s", i =>
                    {
                        using var scope = Tensor.Scope();
                        var h = emb.Forward(xs[i % Pool]).Reshape(batch, context * embed);
                        var loss = Loss.CrossEntropy(mlp.Forward(h), ys[i % Pool]);
                        opt.ZeroGrad();
                        loss.Backward();
                        opt.Step();
                    });
                }
            case "gpt":
                return GptModel(name, g);
            case "lstm":
                return LstmLm(name, g);
            case "cnn":
                return Cnn(name, g);
            default:
                throw new CliException($"unknown benchmark model '{name}'; expected one of: {string.Join(", ", Names)}.");
        }
    }

    /// <summary>
    /// The small GPT of the language-model comparison: width 128, 4 layers, 4 heads, context 64, batch 32,
    /// vocabulary 65 (Tiny Shakespeare's characters), no dropout, AdamW lr 1e-3 (weight decay 0.01).
    /// </summary>
    private static Model GptModel(string name, Generator g)
    {
        const int vocab = 65, context = 64, batch = 32;
        var model = new global::Backprop.Text.Gpt(vocab, context, layers: 4, width: 128, heads: 4, generator: g);
        var opt = new AdamW(model.Parameters(), lr: 1e-3);
        var xs = Enumerable.Range(0, Pool).Select(_ => Tensor.RandInt(0, vocab, [batch, context], g)).ToArray();
        var ys = Enumerable.Range(0, Pool).Select(_ => Tensor.RandInt(0, vocab, [batch * context], g)).ToArray();
        return new Model(name, "GPT: width 128, 4 layers, 4 heads, context 64, vocab 65, AdamW lr 1e-3, batch 32", batch * context, "tokens/s", i =>
        {
            using var scope = Tensor.Scope();
            var loss = Loss.CrossEntropy(model.Logits(xs[i % Pool]).Reshape(batch * context, vocab), ys[i % Pool]);
            opt.ZeroGrad();
            loss.Backward();
            opt.Step();
        });
    }

    private static Model Mlp(string name, string description, int[] sizes, Func<Module> act, int batch, Func<IEnumerable<Tensor>, Optimizer> makeOpt, Generator g)
    {
        var model = new Sequential();
        for (int i = 0; i + 1 < sizes.Length; i++)
        {
            model.Add(new Linear(sizes[i], sizes[i + 1], generator: g));
            if (i + 2 < sizes.Length) model.Add(act());
        }
        var opt = makeOpt(model.Parameters());
        var xs = Enumerable.Range(0, Pool).Select(_ => Tensor.Rand([batch, sizes[0]], g)).ToArray();
        var ys = Enumerable.Range(0, Pool).Select(_ => Tensor.RandInt(0, sizes[^1], [batch], g)).ToArray();
        return new Model(name, description, batch, "samples/s", i =>
        {
            using var scope = Tensor.Scope();
            var loss = Loss.CrossEntropy(model.Forward(xs[i % Pool]), ys[i % Pool]);
            opt.ZeroGrad();
            loss.Backward();
            opt.Step();
        });
    }
}
