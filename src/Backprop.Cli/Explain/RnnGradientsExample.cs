using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Cli.Explain;

/// <summary>
/// Vanishing and exploding gradients, measured: a plain RNN and an LSTM on the same long-range task
/// (say, after 50 tokens, which of two symbols came first), ‖dL/dh_t‖ at every step back from the loss,
/// training both, and clipping by global norm against an exploding RNN.
/// </summary>
public sealed class RnnGradientsExample : WorkedExample
{
    /// <inheritdoc/>
    public override string Name => "rnn-gradients";

    /// <inheritdoc/>
    public override string Summary => "RNN vs LSTM: dL/dh_t vanishing over 50 steps, exploding, and clipping";

    /// <summary>Sequence length: the answer is the first token, the loss is read after the last.</summary>
    public const int Steps = 50;
    /// <summary>Tokens 0 and 1 are the two answers; 2..Vocab−1 are distractors.</summary>
    public const int Vocab = 4;
    /// <summary>Hidden units of both models.</summary>
    public const int Hidden = 16;
    /// <summary>Sequences per batch.</summary>
    public const int Batch = 32;
    /// <summary>The LSTM's forget-gate bias at initialization (Jozefowicz et al. 2015 use 1; a longer memory needs more).</summary>
    public const double ForgetBias = 5;
    /// <summary>Spectral scale of the RNN's recurrent weights in the exploding demonstration.</summary>
    public const double LargeScale = 1.2;
    /// <summary>Scale of the inputs in the exploding demonstration (tiny, so the states stay in tanh's linear range).</summary>
    public const double SmallInput = 1e-5;

    /// <summary>What the example measured.</summary>
    public sealed record Result(double[] RnnNorms, double[] LstmNorms, double[] LargeRnnNorms,
        double RnnAccuracy, double LstmAccuracy, int TrainSteps, double ClipNormBefore, double UpdateUnclipped, double UpdateClipped);

    /// <summary>A batch of the task: one-hot inputs [B, T, V] (scaled) and the answers [B].</summary>
    public static (Tensor X, Tensor Y) Batch_(Generator g, int batch = Batch, double scale = 1)
    {
        var x = new float[batch * Steps * Vocab];
        var y = new long[batch];
        for (int b = 0; b < batch; b++)
        {
            y[b] = g.NextInt(2);
            for (int t = 0; t < Steps; t++)
            {
                int tok = t == 0 ? (int)y[b] : 2 + g.NextInt(Vocab - 2);
                x[(b * Steps + t) * Vocab + tok] = (float)scale;
            }
        }
        return (Tensor.FromArray(x, [batch, Steps, Vocab]), Tensor.FromArray(y, [batch]));
    }

    /// <summary>A model of the task: a recurrent layer read by a linear head after the last step.</summary>
    public sealed class Model : Module
    {
        /// <summary>The recurrent layer (an <see cref="Rnn"/> or an <see cref="Lstm"/>).</summary>
        public Module Cell { get; }
        /// <summary>Last hidden state → two logits.</summary>
        public Linear Head { get; }
        /// <summary>True for the LSTM.</summary>
        public bool IsLstm { get; }

        /// <summary>
        /// PyTorch's default init, except: the LSTM's W_hh is orthogonal in each gate's block and its forget-gate
        /// bias is <see cref="ForgetBias"/>; with <paramref name="recurrentScale"/>, the RNN's W_hh is that times a
        /// random orthogonal matrix and its biases are zero.
        /// </summary>
        public Model(bool lstm, Generator g, double? recurrentScale = null)
        {
            IsLstm = lstm;
            Cell = lstm ? new Lstm(Vocab, Hidden, generator: g) : new Rnn(Vocab, Hidden, generator: g);
            Head = new Linear(Hidden, 2, generator: g);
            using var _ = Tensor.NoGrad();
            if (lstm)
            {
                var lstmCell = (Lstm)Cell;
                lstmCell.BiasIh(0)!.Narrow(0, Hidden, Hidden).Fill_(ForgetBias);
                lstmCell.BiasHh(0)!.Narrow(0, Hidden, Hidden).Fill_(0);
                var whh = lstmCell.WeightHh(0);
                for (int k = 0; k < 4; k++) whh.Narrow(0, k * Hidden, Hidden).CopyFrom(Init.Orthogonal_(Tensor.Zeros(Hidden, Hidden), 1, g));
            }
            if (recurrentScale is double s)
            {
                var rnn = (Rnn)Cell;
                Init.Orthogonal_(rnn.WeightHh(0), s, g);
                rnn.BiasIh(0)!.Zero_();
                rnn.BiasHh(0)!.Zero_();
            }
        }

        /// <summary>The two logits after the whole sequence [B, T, V].</summary>
        public override Tensor Forward(Tensor x)
        {
            var (y, _, _) = ((IRecurrentLayer)Cell).Run(x, null, null);
            return Head.Call(y.Select(1, Steps - 1));
        }

        /// <summary>
        /// ‖dL/dh_t‖ for t = 0..T−1 (Frobenius over the batch; L the mean cross-entropy at the last step): the
        /// same model run one step at a time, each step's hidden state kept with RetainGrad.
        /// </summary>
        public double[] StepGradientNorms(Tensor x, Tensor y)
        {
            var hs = new Tensor[Steps];
            Tensor? h = null, c = null;
            for (int t = 0; t < Steps; t++)
            {
                var xt = x.Narrow(1, t, 1);
                if (IsLstm)
                {
                    var m = (Lstm)Cell;
                    var (_, hn, cn) = Functional.Lstm(xt, h, c, m.WeightIh(0), m.WeightHh(0), m.BiasIh(0), m.BiasHh(0));
                    (h, c) = (hn, cn);
                }
                else
                {
                    var m = (Rnn)Cell;
                    h = Functional.Rnn(xt, h, m.WeightIh(0), m.WeightHh(0), m.BiasIh(0), m.BiasHh(0)).H;
                }
                hs[t] = h.RetainGrad();
            }
            var loss = Loss.CrossEntropy(Head.Call(h!), y);
            foreach (var p in Parameters()) p.Grad = null;
            loss.Backward();
            var norms = hs.Select(t => t.Grad!.Norm().ItemDouble()).ToArray();
            foreach (var p in Parameters()) p.Grad = null;
            return norms;
        }
    }

    /// <summary>Trains a model with Adam for <paramref name="steps"/> batches; returns its accuracy on 1024 fresh sequences.</summary>
    public static double TrainAndTest(Model model, int steps, Generator data, double lr = 1e-2)
    {
        var opt = new Adam(model.Parameters(), lr);
        for (int i = 0; i < steps; i++)
        {
            using var scope = Tensor.Scope();
            var (x, y) = Batch_(data);
            var loss = Loss.CrossEntropy(model.Forward(x), y);
            opt.ZeroGrad();
            loss.Backward();
            GradClip.ClipGradNorm(model.Parameters(), 1.0);
            opt.Step();
        }
        using var _ = Tensor.NoGrad();
        var (tx, ty) = Batch_(new Generator(999), 1024);
        var pred = model.Forward(tx).Argmax(1);
        return pred.Eq(ty).To(DType.Float64).Mean().ItemDouble();
    }

    /// <summary>Measures everything the example prints.</summary>
    public Result Compute(int trainSteps = 300, int seed = 1)
    {
        var probe = Batch_(new Generator(seed + 100));
        var rnn = new Model(false, new Generator(seed));
        var lstm = new Model(true, new Generator(seed));
        var rnnNorms = rnn.StepGradientNorms(probe.X, probe.Y);
        var lstmNorms = lstm.StepGradientNorms(probe.X, probe.Y);
        var large = new Model(false, new Generator(seed), LargeScale);
        var small = Batch_(new Generator(seed + 100), scale: SmallInput);
        var largeNorms = large.StepGradientNorms(small.X, small.Y);

        // clipping: one SGD step on the exploding RNN, with and without clipping the global norm to 1
        double before, unclipped, clipped;
        {
            var m = new Model(false, new Generator(seed), LargeScale);
            var p0 = m.Parameters().Select(p => p.Detach().Clone()).ToArray();
            before = SgdUpdateNorm(m, small, p0, clip: false);
            unclipped = lastUpdate;
            var m2 = new Model(false, new Generator(seed), LargeScale);
            SgdUpdateNorm(m2, small, p0, clip: true);
            clipped = lastUpdate;
        }
        double rnnAcc = TrainAndTest(rnn, trainSteps, new Generator(seed + 7));
        double lstmAcc = TrainAndTest(lstm, trainSteps, new Generator(seed + 7));
        return new Result(rnnNorms, lstmNorms, largeNorms, rnnAcc, lstmAcc, trainSteps, before, unclipped, clipped);
    }

    private double lastUpdate;

    /// <summary>One SGD step (lr 0.1): returns the global gradient norm; <see cref="lastUpdate"/> gets ‖Δθ‖.</summary>
    private double SgdUpdateNorm(Model m, (Tensor X, Tensor Y) batch, Tensor[] start, bool clip)
    {
        var ps = m.Parameters().ToArray();
        var loss = Loss.CrossEntropy(m.Forward(batch.X), batch.Y);
        loss.Backward();
        double norm = clip ? GradClip.ClipGradNorm(ps, 1.0) : Math.Sqrt(ps.Sum(p => Math.Pow(p.Grad!.Norm().ItemDouble(), 2)));
        new Sgd(ps, 0.1).Step();
        lastUpdate = Math.Sqrt(ps.Select((p, i) => Math.Pow((p.Detach() - start[i]).Norm().ItemDouble(), 2)).Sum());
        return norm;
    }

    /// <inheritdoc/>
    public override void Run(TextWriter o)
    {
        var r = Compute();
        o.WriteLine($"Vanishing and exploding gradients: remember the first of {Steps} tokens");
        o.WriteLine();
        o.WriteLine($"  Task: token 0 or 1 comes first, then {Steps - 1} random distractors (2..{Vocab - 1}); after the last token,");
        o.WriteLine($"  say which came first. Hidden size {Hidden}, batch {Batch}; the loss L is read only after step {Steps - 1}.");
        o.WriteLine($"  Backprop through time carries dL/dh_t back one step at a time: dL/dh_(t-1) = W_hh^T (dL/dh_t * tanh'),");
        o.WriteLine($"  so a plain RNN multiplies by roughly the same matrix {Steps - 1} times. The LSTM's cell state c_t = f*c_(t-1) + i*g");
        o.WriteLine($"  passes its gradient back through the forget gate f alone (initialized near 1: bias {F(ForgetBias, 0)}, W_hh orthogonal per gate).");
        o.WriteLine();
        o.WriteLine("  ||dL/dh_t|| at initialization, measured with RetainGrad on every step's hidden state:");
        o.WriteLine($"    {"t",4}  {"RNN",11}  {"LSTM",11}  {"RNN, W_hh = " + F(LargeScale, 2) + " Q",20}");
        for (int t = Steps - 1; t >= 0; t--)
            if (t >= Steps - 5 || t % 5 == 0)
                o.WriteLine($"    {t,4}  {E(r.RnnNorms[t]),11}  {E(r.LstmNorms[t]),11}  {E(r.LargeRnnNorms[t]),20}");
        double rr = r.RnnNorms[0] / r.RnnNorms[^1], lr = r.LstmNorms[0] / r.LstmNorms[^1], xr = r.LargeRnnNorms[0] / r.LargeRnnNorms[^1];
        o.WriteLine($"    ratio ||dL/dh_0|| / ||dL/dh_{Steps - 1}||:  RNN {E(rr)}   LSTM {E(lr)}   large-W_hh RNN {E(xr)}");
        double perStep = Math.Pow(rr, 1.0 / (Steps - 1));
        o.WriteLine($"    The RNN's gradient {(rr < 1 ? "shrinks" : "grows")} by about x{F(perStep, 3)} per step back (geometrically); the LSTM's {(lr > 0.1 ? "holds" : "fades too")}.");
        o.WriteLine($"    With W_hh a random orthogonal matrix times {F(LargeScale, 2)}, no biases and inputs x{SmallInput:0e+0} (tanh stays near-linear), the RNN's");
        o.WriteLine($"    gradient {(xr > 1 ? "grows" : "does not grow")} going back: x{F(Math.Pow(xr, 1.0 / (Steps - 1)), 3)} per step, {E(xr)} over {Steps - 1} steps.");
        o.WriteLine();
        o.WriteLine($"  Clipping by global norm (one SGD step, lr 0.1, on the large-W_hh RNN):");
        o.WriteLine($"    global gradient norm {E(r.ClipNormBefore)}; parameter change ||delta theta|| without clipping {E(r.UpdateUnclipped)},");
        o.WriteLine($"    with GradClip.ClipGradNorm(parameters, 1.0) {E(r.UpdateClipped)} (at most lr x 1): the direction is kept, the step is bounded.");
        o.WriteLine();
        o.WriteLine($"  Training both ({r.TrainSteps} Adam steps, lr 0.01, clipping at 1), accuracy on 1024 new sequences:");
        o.WriteLine($"    RNN  {F(100 * r.RnnAccuracy, 1)}%   (50% is guessing: the signal from step 0 never arrives)");
        o.WriteLine($"    LSTM {F(100 * r.LstmAccuracy, 1)}%");
    }

    private static string E(double v) => v.ToString("0.00e+00", System.Globalization.CultureInfo.InvariantCulture);
}
