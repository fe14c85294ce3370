using Backprop.NN;
using Backprop.Optim;
using Backprop.Text;

namespace Backprop.Cli.Bench;

public static partial class BenchModels
{
    /// <summary>
    /// Character LSTM language model: 65 characters (Tiny Shakespeare's) → embedding 64 → LSTM 256 → logits,
    /// context 64, batch 32, Adam lr 2e-3, truncated BPTT (the state carried from step to step, detached).
    /// </summary>
    private static Model LstmLm(string name, Generator g)
    {
        const int vocab = 65, embed = 64, hidden = 256, batch = 32, context = 64;
        var model = new RecurrentLanguageModel(RecurrentKind.Lstm, vocab, embed, hidden, generator: g);
        var opt = new Adam(model.Parameters(), lr: 2e-3);
        var xs = Enumerable.Range(0, Pool).Select(_ => Tensor.RandInt(0, vocab, [batch, context], g)).ToArray();
        var ys = Enumerable.Range(0, Pool).Select(_ => Tensor.RandInt(0, vocab, [batch * context], g)).ToArray();
        return new Model(name, "char LSTM LM: 65 chars -> embedding 64 -> LSTM 256 -> 65, context 64, Adam lr 2e-3, batch 32", batch * context, "tokens/s", i =>
        {
            using var scope = Tensor.Scope();
            var logits = model.Logits(xs[i % Pool]);                     // [32, 64, 65]
            var loss = Loss.CrossEntropy(logits.Reshape(batch * context, vocab), ys[i % Pool]);
            opt.ZeroGrad();
            loss.Backward();
            model.DetachState();
            opt.Step();
        });
    }
}
