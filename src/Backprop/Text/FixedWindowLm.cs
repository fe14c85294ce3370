using Backprop.NN;

namespace Backprop.Text;

/// <summary>
/// The fixed-window neural language model of Bengio et al. (2003), the lecture's model and makemore's
/// MLP: the embeddings of the last <see cref="Context"/> tokens (one shared table, so a row's gradient
/// sums over every position and example that used it), concatenated, a tanh hidden layer, and a linear
/// layer to the vocabulary's logits. Before the start of a sequence the window is padded with the
/// boundary token.
/// </summary>
public sealed class FixedWindowLm : LanguageModel
{
    private readonly Embedding _embed;
    private readonly Linear _hidden;
    private readonly Linear _output;

    /// <summary>Creates the model with PyTorch's default initializations (embeddings N(0, 1)).</summary>
    /// <param name="vocabSize">Tokens in the vocabulary.</param>
    /// <param name="context">Tokens the model sees (N).</param>
    /// <param name="embeddingDim">Size of each token's vector.</param>
    /// <param name="hidden">Units of the tanh layer.</param>
    /// <param name="boundary">The token that pads the window before a sequence starts.</param>
    /// <param name="generator">Random numbers for initialization.</param>
    /// <param name="dtype">Parameter type.</param>
    public FixedWindowLm(int vocabSize, int context, int embeddingDim, int hidden, int boundary = 0, Generator? generator = null, DType dtype = DType.Float32)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(context, 1);
        if ((uint)boundary >= (uint)vocabSize)
            throw new ArgumentOutOfRangeException(nameof(boundary), boundary, $"FixedWindowLm: the boundary token {boundary} is not in 0..{vocabSize - 1}.");
        Context = context;
        Boundary = boundary;
        VocabSize = vocabSize;
        _embed = new Embedding(vocabSize, embeddingDim, generator, dtype);
        _hidden = new Linear(context * embeddingDim, hidden, generator: generator, dtype: dtype);
        _output = new Linear(hidden, vocabSize, generator: generator, dtype: dtype);
    }

    /// <inheritdoc/>
    public override int VocabSize { get; }

    /// <summary>Tokens of context (N).</summary>
    public int Context { get; }

    /// <summary>The padding token before a sequence's start.</summary>
    public int Boundary { get; }

    /// <summary>The shared embedding table.</summary>
    public Embedding Embedding => _embed;

    /// <summary>
    /// Next-token logits [B, V] for windows <paramref name="windows"/> int64 [B, N] (oldest token first):
    /// the model's one computation, which <see cref="Logits"/> applies at every position.
    /// </summary>
    public Tensor WindowLogits(Tensor windows)
    {
        if (windows.Rank != 2 || windows.Size(1) != Context)
            throw new ShapeException($"FixedWindowLm: windows must be [B, {Context}], got {windows.Shape}.");
        return Compute(windows, _embed.Weight, _hidden.Weight, _hidden.Bias!, _output.Weight, _output.Bias!);
    }

    /// <summary>
    /// The model as a function of its parameters: logits [B, V] = W2·tanh(W1·concat(C[w_1], …, C[w_N]) + b1) + b2
    /// for windows int64 [B, N], table C [V, E], W1 [H, N·E], b1 [H], W2 [V, H], b2 [V] (what
    /// <see cref="WindowLogits"/> computes with the model's own parameters; gradient checks use it).
    /// </summary>
    public static Tensor Compute(Tensor windows, Tensor table, Tensor w1, Tensor b1, Tensor w2, Tensor b2)
    {
        var e = Functional.Embedding(windows, table);                       // [B, N, E]: one shared table
        var h = Functional.Linear(e.Reshape(windows.Size(0), -1), w1, b1, FusedActivation.Tanh);
        return Functional.Linear(h, w2, b2);
    }

    /// <inheritdoc/>
    public override Tensor Logits(Tensor tokens)
    {
        if (tokens.Rank != 2) throw new ShapeException($"FixedWindowLm: tokens must be [B, T], got {tokens.Shape}.");
        int b = tokens.Size(0), t = tokens.Size(1), n = Context;
        // The window at each position, built on the host: ids carry no gradient.
        var ids = tokens.ToLongArray();
        var w = new long[b * t * n];
        for (int i = 0; i < b; i++)
            for (int p = 0; p < t; p++)
                for (int k = 0; k < n; k++)
                {
                    int src = p - n + 1 + k;
                    w[((i * t) + p) * n + k] = src >= 0 ? ids[i * t + src] : Boundary;
                }
        return WindowLogits(Tensor.FromArray(w, [b * t, n])).Reshape(b, t, VocabSize);
    }

    /// <inheritdoc/>
    /// <remarks>The window is all the model needs: each new token costs one window, whatever the context.</remarks>
    public override IDecoder StartDecoding(int maxContext) => new WindowDecoder(this);

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"context={Context}, vocab={VocabSize}";

    private sealed class WindowDecoder(FixedWindowLm model) : IDecoder
    {
        private readonly long[] _window = Enumerable.Repeat((long)model.Boundary, model.Context).ToArray();

        public Tensor Append(long token)
        {
            Array.Copy(_window, 1, _window, 0, _window.Length - 1);
            _window[^1] = token;
            using var _ = Tensor.NoGrad();
            return model.WindowLogits(Tensor.FromArray(_window, [1, _window.Length])).Select(0, 0).Detach();
        }
    }
}
