using Backprop.NN;

namespace Backprop.Text;

/// <summary>Which recurrent layer a <see cref="RecurrentLanguageModel"/> uses.</summary>
public enum RecurrentKind
{
    /// <summary>Elman RNN with tanh (<see cref="NN.Rnn"/>).</summary>
    Rnn,
    /// <summary><see cref="NN.Lstm"/>.</summary>
    Lstm,
    /// <summary><see cref="NN.Gru"/>.</summary>
    Gru,
}

/// <summary>
/// Token embedding → stacked <see cref="Rnn"/>, <see cref="Lstm"/> or <see cref="Gru"/> → linear map to the
/// vocabulary. Built for truncated backprop through time: the final state of one <see cref="Logits"/> call
/// is the initial state of the next (still in the graph, so a backward reaches back into the previous
/// chunk until <see cref="DetachState"/> cuts it; call that inside the training step, before its
/// <c>Tensor.Scope()</c> ends). A new batch size starts from zeros. Decoding carries the hidden state, so
/// each new token costs one step of the cell whatever the context length.
/// </summary>
public sealed class RecurrentLanguageModel : LanguageModel
{
    /// <summary>The token embedding table [vocab, embedding].</summary>
    public Embedding Embedding { get; }

    /// <summary>The recurrent stack (a <see cref="Rnn"/>, <see cref="Lstm"/> or <see cref="Gru"/>).</summary>
    public Module Recurrent { get; }

    /// <summary>Hidden state → next-token logits.</summary>
    public Linear Head { get; }

    /// <summary>The kind of recurrent layer.</summary>
    public RecurrentKind Kind { get; }

    private readonly IRecurrentLayer _layer;
    private readonly int _vocab;
    private Tensor? _h, _c;                 // the carried state: the last call's final state (in the graph) or the buffers below
    private Tensor? _hBuffer, _cBuffer;     // detached copies, reused from step to step

    /// <summary>Creates the model (PyTorch's initialization for each part).</summary>
    public RecurrentLanguageModel(RecurrentKind kind, int vocabSize, int embeddingDim, int hiddenSize, int numLayers = 1,
        double dropout = 0, Generator? generator = null, DType dtype = DType.Float32)
    {
        Kind = kind;
        _vocab = vocabSize;
        Embedding = new Embedding(vocabSize, embeddingDim, generator, dtype);
        Module layer = kind switch
        {
            RecurrentKind.Lstm => new Lstm(embeddingDim, hiddenSize, numLayers, dropout: dropout, generator: generator, dtype: dtype),
            RecurrentKind.Gru => new Gru(embeddingDim, hiddenSize, numLayers, dropout: dropout, generator: generator, dtype: dtype),
            _ => new Rnn(embeddingDim, hiddenSize, numLayers, dropout: dropout, generator: generator, dtype: dtype),
        };
        Recurrent = layer;
        _layer = (IRecurrentLayer)layer;
        Head = new Linear(hiddenSize, vocabSize, generator: generator, dtype: dtype);
    }

    /// <inheritdoc/>
    public override int VocabSize => _vocab;

    /// <inheritdoc/>
    public override Tensor Logits(Tensor tokens)
    {
        if (tokens.Rank != 2) throw new ShapeException($"RecurrentLanguageModel: tokens must be [B, T] int64 ids, got {tokens.Shape}.");
        int batch = tokens.Size(0);
        if (_h != null && _h.Size(1) != batch) ResetState();
        var (logits, h, c) = Step(tokens, _h, _c);
        (_h, _c) = (h, c);
        return logits;
    }

    /// <summary>Logits [B, T, V] and the final state for tokens [B, T] from a state [L, B, H] (zeros when null).</summary>
    private (Tensor Logits, Tensor H, Tensor? C) Step(Tensor tokens, Tensor? h0, Tensor? c0)
    {
        var x = Embedding.Call(tokens);                 // [B, T, E]
        var (y, h, c) = _layer.Run(x, h0, c0);          // [B, T, H]
        return (Head.Call(y), h, c);
    }

    /// <inheritdoc/>
    public override void ResetState() => _h = _c = null;

    /// <inheritdoc/>
    public override void DetachState()
    {
        if (_h == null) return;
        _h = Keep(_h, ref _hBuffer);
        if (_c != null) _c = Keep(_c, ref _cBuffer);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<KeyValuePair<string, Tensor>> CarriedState() =>
        _h == null ? [] : _c == null ? [new("h", _h)] : [new("h", _h), new("c", _c)];

    /// <inheritdoc/>
    public override void SetCarriedState(IReadOnlyList<KeyValuePair<string, Tensor>> state)
    {
        if (state.Count == 0)
        {
            ResetState();
            return;
        }
        bool lstm = Kind == RecurrentKind.Lstm;
        Tensor? h = null, c = null;
        foreach (var (name, t) in state)
        {
            if (name == "h") h = t;
            else if (name == "c" && lstm) c = t;
            else throw new ArgumentException($"RecurrentLanguageModel ({Kind}): no carried state named '{name}' (it carries {(lstm ? "h and c" : "h")}).", nameof(state));
            if (t.Rank != 3 || t.Size(0) != _layer.NumLayers || t.Size(2) != _layer.HiddenSize || t.DType != Head.Weight.DType)
                throw new ArgumentException($"RecurrentLanguageModel ({Kind}): carried state '{name}' must be [{_layer.NumLayers}, batch, {_layer.HiddenSize}] {Head.Weight.DType.Name()}, got {t.Shape} {t.DType.Name()}.", nameof(state));
        }
        if (h == null || (lstm && c == null) || (c != null && !c.Shape.Equals(h.Shape)))
            throw new ArgumentException($"RecurrentLanguageModel ({Kind}): the carried state needs {(lstm ? "h and c of one shape" : "h")}.", nameof(state));
        _h = Keep(h, ref _hBuffer);
        _c = c == null ? null : Keep(c, ref _cBuffer);
    }

    /// <summary>The values of <paramref name="state"/> in a buffer of the model's own, outside any graph and scope.</summary>
    private static Tensor Keep(Tensor state, ref Tensor? buffer)
    {
        if (ReferenceEquals(state, buffer)) return state;
        using var _ = Tensor.NoGrad();
        if (buffer == null || !buffer.Shape.Equals(state.Shape) || buffer.DType != state.DType)
            buffer = state.Detach().Clone().Detach();   // a tensor the model owns: never recycled by a scope
        else buffer.CopyFrom(state);
        return buffer;
    }

    /// <summary>Carries the hidden state from token to token: each token is one step of the cell. <paramref name="maxContext"/> is not needed (the state summarizes everything before).</summary>
    public override IDecoder StartDecoding(int maxContext) => new RecurrentDecoder(this);

    private sealed class RecurrentDecoder(RecurrentLanguageModel model) : IDecoder
    {
        private Tensor? _h, _c;

        public Tensor Append(long token)
        {
            using var _ = Tensor.NoGrad();
            var ids = Tensor.FromArray(new[] { token }, [1, 1]);
            var (logits, h, c) = model.Step(ids, _h, _c);
            _h = h.Detach();
            _c = c?.Detach();
            return logits.Select(0, 0).Select(0, 0).Detach();
        }
    }

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"{Kind}";
}
