using Backprop.Backends;

namespace Backprop.NN;

/// <summary>
/// What <see cref="Rnn"/>, <see cref="Lstm"/> and <see cref="Gru"/> share: stacked layers over batch-first
/// sequences, each layer one fused whole-sequence op, with dropout between layers in training mode (masks
/// from the layer's generator, or per sample from a <see cref="SampleMasks"/> stream once attached).
/// Parameters are named and laid out as PyTorch's (<c>weight_ih_l0</c> [G·H, I], <c>weight_hh_l0</c> [G·H, H],
/// <c>bias_ih_l0</c>, <c>bias_hh_l0</c> [G·H], then <c>…_l1</c>), and initialized as PyTorch does
/// (every weight and bias uniform in ±1/√H), so state dicts interchange.
/// </summary>
public abstract class RecurrentLayer<TIn, TOut> : Module<TIn, TOut>, IRecurrentLayer, IStochasticModule, IPerSampleDropout
{
    private SampleMaskSlot? _slot;
    void IPerSampleDropout.UsePerSampleMasks(SampleMaskSlot slot) => _slot = slot;

    private readonly Parameter[] _weightIh, _weightHh;
    private readonly Parameter?[] _biasIh, _biasHh;
    private readonly Generator? _generator;
    internal RecurrentCell Cell { get; }

    /// <summary>Features per time step of the input.</summary>
    public int InputSize { get; }
    /// <summary>Features of the hidden state (and of each output step).</summary>
    public int HiddenSize { get; }
    /// <summary>Stacked layers; layer l+1 reads layer l's outputs.</summary>
    public int NumLayers { get; }
    /// <summary>Whether the layers have the biases b_ih and b_hh.</summary>
    public bool HasBias { get; }
    /// <summary>Dropout probability on the outputs of every layer but the last, in training mode.</summary>
    public double DropoutP { get; }

    private protected RecurrentLayer(RecurrentCell cell, int inputSize, int hiddenSize, int numLayers, bool bias, double dropout, Generator? generator, DType dtype)
    {
        string name = GetType().Name;
        if (inputSize <= 0 || hiddenSize <= 0 || numLayers <= 0)
            throw new ArgumentOutOfRangeException(nameof(inputSize), $"{name}: input size, hidden size and layer count must be positive, got {inputSize}, {hiddenSize}, {numLayers}.");
        if (!(dropout >= 0 && dropout <= 1)) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, $"{name}: dropout must be in [0, 1].");
        (Cell, InputSize, HiddenSize, NumLayers, HasBias, DropoutP) = (cell, inputSize, hiddenSize, numLayers, bias, dropout);
        int g = cell.Blocks() * hiddenSize;
        double k = 1 / Math.Sqrt(hiddenSize);
        _weightIh = new Parameter[numLayers];
        _weightHh = new Parameter[numLayers];
        _biasIh = new Parameter?[numLayers];
        _biasHh = new Parameter?[numLayers];
        for (int l = 0; l < numLayers; l++)
        {
            _weightIh[l] = RegisterParameter($"weight_ih_l{l}", new Parameter(Tensor.Uniform([g, l == 0 ? inputSize : hiddenSize], -k, k, generator, dtype)));
            _weightHh[l] = RegisterParameter($"weight_hh_l{l}", new Parameter(Tensor.Uniform([g, hiddenSize], -k, k, generator, dtype)));
            if (!bias) continue;
            _biasIh[l] = RegisterParameter($"bias_ih_l{l}", new Parameter(Tensor.Uniform([g], -k, k, generator, dtype)));
            _biasHh[l] = RegisterParameter($"bias_hh_l{l}", new Parameter(Tensor.Uniform([g], -k, k, generator, dtype)));
        }
        // Dropout between layers draws from a generator of the layer's own (seeded from the one given,
        // after the weights), which checkpoints save: a resumed run draws the masks the original would have.
        if (dropout > 0 && numLayers > 1) _generator = new Generator((generator ?? Generator.Default).NextUInt64());
    }

    /// <inheritdoc/>
    public Generator? TrainingGenerator => DropoutP > 0 && NumLayers > 1 ? _generator : null;

    /// <summary>W_ih of a layer, [G·H, I] (G = 1, 4, 3 for RNN, LSTM, GRU).</summary>
    public Parameter WeightIh(int layer) => _weightIh[layer];
    /// <summary>W_hh of a layer, [G·H, H].</summary>
    public Parameter WeightHh(int layer) => _weightHh[layer];
    /// <summary>b_ih of a layer, or null without biases.</summary>
    public Parameter? BiasIh(int layer) => _biasIh[layer];
    /// <summary>b_hh of a layer, or null without biases.</summary>
    public Parameter? BiasHh(int layer) => _biasHh[layer];

    (Tensor Output, Tensor H, Tensor? C) IRecurrentLayer.Run(Tensor x, Tensor? h0, Tensor? c0) => Run(x, h0, c0);

    /// <summary>All layers over <paramref name="x"/> [B, T, I] from states [L, B, H] (zeros when null).</summary>
    private protected (Tensor Output, Tensor H, Tensor? C) Run(Tensor x, Tensor? h0, Tensor? c0)
    {
        string name = GetType().Name;
        if (x.Rank != 3 || x.Size(2) != InputSize)
            throw new ShapeException($"{name}: input must be batch-first [B, T, {InputSize}], got {x.Shape}.");
        int batch = x.Size(0);
        CheckState(h0, batch, "hidden");
        CheckState(c0, batch, "cell");
        bool lstm = Cell == RecurrentCell.Lstm;
        var hs = new Tensor[NumLayers];
        var cs = lstm ? new Tensor[NumLayers] : null;
        var input = x;
        for (int l = 0; l < NumLayers; l++)
        {
            var p = Functional.RecurrentSequence(Cell, input, h0?.Select(0, l), c0?.Select(0, l), _weightIh[l], _weightHh[l], _biasIh[l], _biasHh[l]);
            int t = x.Size(1);
            hs[l] = p.Select(0, t);
            if (lstm) cs![l] = p.Select(0, t + 1);
            input = p.Narrow(0, 1, t).Transpose(0, 1);
            if (l + 1 < NumLayers && DropoutP > 0)
                input = _slot is { } slot && Training ? Functional.DropoutPerSample(input, DropoutP, slot.NextKey(), slot.FirstSample)
                    : Functional.Dropout(input, DropoutP, Training, _generator);
        }
        return (input, Stack(hs), cs == null ? null : Stack(cs));
    }

    private static Tensor Stack(Tensor[] states) => states.Length == 1 ? states[0].Unsqueeze(0) : Tensor.Stack(states, 0);

    private void CheckState(Tensor? s, int batch, string what)
    {
        if (s != null && (s.Rank != 3 || s.Size(0) != NumLayers || s.Size(1) != batch || s.Size(2) != HiddenSize))
            throw new ShapeException($"{GetType().Name}: initial {what} state must be [{NumLayers}, {batch}, {HiddenSize}] (layers, batch, hidden), got {s.Shape}.");
    }

    /// <inheritdoc/>
    protected override string ExtraRepr() =>
        $"{InputSize}, {HiddenSize}" + (NumLayers > 1 ? $", num_layers={NumLayers}" : "") + (HasBias ? "" : ", bias=False") + (DropoutP > 0 ? $", dropout={DropoutP}" : "");
}

/// <summary>The recurrent layers seen without their typed state (for models built on any of them).</summary>
public interface IRecurrentLayer
{
    /// <summary>Input features per step.</summary>
    int InputSize { get; }
    /// <summary>Hidden features.</summary>
    int HiddenSize { get; }
    /// <summary>Layers.</summary>
    int NumLayers { get; }
    /// <summary>Outputs [B, T, H], final hidden state [L, B, H] and (LSTM only) final cell state, from states [L, B, H] or zeros.</summary>
    (Tensor Output, Tensor H, Tensor? C) Run(Tensor x, Tensor? h0, Tensor? c0);
}

/// <summary>
/// Elman RNN with tanh (torch.nn.RNN, batch_first=True): h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh) per layer.
/// Input (x [B, T, I], h0 [L, B, H] or null); output (outputs [B, T, H], h_T [L, B, H]).
/// </summary>
public sealed class Rnn(int inputSize, int hiddenSize, int numLayers = 1, bool bias = true, double dropout = 0, Generator? generator = null, DType dtype = DType.Float32)
    : RecurrentLayer<(Tensor X, Tensor? H), (Tensor Output, Tensor H)>(RecurrentCell.RnnTanh, inputSize, hiddenSize, numLayers, bias, dropout, generator, dtype)
{
    /// <inheritdoc/>
    public override (Tensor Output, Tensor H) Forward((Tensor X, Tensor? H) input)
    {
        var (y, h, _) = Run(input.X, input.H, null);
        return (y, h);
    }

    /// <summary>The outputs [B, T, H] for x [B, T, I] from a zero state.</summary>
    public override Tensor Forward(Tensor input) => Run(input, null, null).Output;
}

/// <summary>
/// Long short-term memory (torch.nn.LSTM, batch_first=True), gates i, f, g, o in that order in the weights' rows.
/// Input (x [B, T, I], (h0, c0) [L, B, H] or null); output (outputs [B, T, H], (h_T, c_T) [L, B, H]).
/// </summary>
public sealed class Lstm(int inputSize, int hiddenSize, int numLayers = 1, bool bias = true, double dropout = 0, Generator? generator = null, DType dtype = DType.Float32)
    : RecurrentLayer<(Tensor X, (Tensor H, Tensor C)? State), (Tensor Output, (Tensor H, Tensor C) State)>(RecurrentCell.Lstm, inputSize, hiddenSize, numLayers, bias, dropout, generator, dtype)
{
    /// <inheritdoc/>
    public override (Tensor Output, (Tensor H, Tensor C) State) Forward((Tensor X, (Tensor H, Tensor C)? State) input)
    {
        var (y, h, c) = Run(input.X, input.State?.H, input.State?.C);
        return (y, (h, c!));
    }

    /// <summary>The outputs [B, T, H] for x [B, T, I] from a zero state.</summary>
    public override Tensor Forward(Tensor input) => Run(input, null, null).Output;
}

/// <summary>
/// Gated recurrent unit (torch.nn.GRU, batch_first=True), gates r, z, n in that order, b_hn inside the reset product.
/// Input (x [B, T, I], h0 [L, B, H] or null); output (outputs [B, T, H], h_T [L, B, H]).
/// </summary>
public sealed class Gru(int inputSize, int hiddenSize, int numLayers = 1, bool bias = true, double dropout = 0, Generator? generator = null, DType dtype = DType.Float32)
    : RecurrentLayer<(Tensor X, Tensor? H), (Tensor Output, Tensor H)>(RecurrentCell.Gru, inputSize, hiddenSize, numLayers, bias, dropout, generator, dtype)
{
    /// <inheritdoc/>
    public override (Tensor Output, Tensor H) Forward((Tensor X, Tensor? H) input)
    {
        var (y, h, _) = Run(input.X, input.H, null);
        return (y, h);
    }

    /// <summary>The outputs [B, T, H] for x [B, T, I] from a zero state.</summary>
    public override Tensor Forward(Tensor input) => Run(input, null, null).Output;
}
