using Backprop.NN;

namespace Backprop.Text;

/// <summary>
/// A small GPT (GPT-2's shape, as in nanoGPT): token embedding <c>wte</c> plus learned position embedding
/// <c>wpe</c>, dropout, <see cref="NumLayers"/> pre-norm <see cref="TransformerBlock"/>s (<c>h.0</c>, <c>h.1</c>, ...),
/// a final layer norm <c>ln_f</c>, and the output projection tied to the token embedding (the logits are
/// x·wteᵀ, no bias: one matrix both reads and writes tokens, and its gradient is the sum of both uses).
/// </summary>
public sealed class Gpt : LanguageModel
{
    private readonly int _vocab;

    /// <summary>Token embedding [vocab, width], also the output projection.</summary>
    public Embedding Wte { get; private set; }

    /// <summary>Position embedding [blockSize, width].</summary>
    public Embedding Wpe { get; private set; }

    /// <summary>Dropout on the summed embeddings (training only).</summary>
    public Dropout Drop { get; private set; }

    /// <summary>The transformer blocks.</summary>
    public ModuleList H { get; private set; }

    /// <summary>The final layer norm.</summary>
    public LayerNorm Ln_F { get; private set; }

    /// <summary>The longest context (number of learned positions).</summary>
    public int BlockSize { get; }

    /// <summary>The model width.</summary>
    public int Width { get; }

    /// <summary>Number of transformer blocks.</summary>
    public int NumLayers { get; }

    /// <summary>Attention heads per block.</summary>
    public int NumHeads { get; }

    /// <inheritdoc/>
    public override int VocabSize => _vocab;

    /// <summary>
    /// Creates the model with GPT-2's initialization: every weight N(0, 0.02), the residual projections
    /// (each block's attention and MLP <c>c_proj</c>) N(0, 0.02/√(2·layers)), biases 0, layer norms 1 and 0.
    /// </summary>
    public Gpt(int vocabSize, int blockSize, int layers = 4, int width = 128, int heads = 4, double dropout = 0,
        Generator? generator = null, DType dtype = DType.Float32)
    {
        if (vocabSize < 1 || blockSize < 1 || layers < 1)
            throw new ArgumentException($"Gpt: vocabulary size, block size and layers must be positive, got {vocabSize}, {blockSize}, {layers}.");
        if (width < 1 || heads < 1 || width % heads != 0)
            throw new ArgumentException($"Gpt: the width {width} must be a positive multiple of the number of heads {heads}.");
        var g = generator ?? Generator.Default;
        (_vocab, BlockSize, Width, NumLayers, NumHeads) = (vocabSize, blockSize, width, layers, heads);
        Wte = new Embedding(vocabSize, width, g, dtype);
        Wpe = new Embedding(blockSize, width, g, dtype);
        Drop = new Dropout(dropout, new Generator(g.NextUInt64()));
        H = new ModuleList(Enumerable.Range(0, layers).Select(_ => (Module)new TransformerBlock(width, heads, dropout, causal: true, generator: g, dtype: dtype)));
        Ln_F = new LayerNorm(width, dtype: dtype);
        foreach (var (name, p) in NamedParameters())
        {
            if (name.EndsWith(".bias") || name.Contains("ln_")) continue;
            Init.Normal_(p, 0, name.EndsWith("c_proj.weight") ? 0.02 / Math.Sqrt(2 * layers) : 0.02, g);
        }
    }

    /// <inheritdoc/>
    public override Tensor Logits(Tensor tokens)
    {
        if (tokens.Rank != 2) throw new ShapeException($"Gpt: expected token ids of shape [batch, time], got {tokens.Shape}.");
        int t = tokens.Size(1);
        if (t < 1 || t > BlockSize) throw new ShapeException($"Gpt: a sequence of {t} tokens does not fit the block size {BlockSize}.");
        var x = Drop.Forward(Wte.Forward(tokens) + (t == BlockSize ? Wpe.Weight : Wpe.Weight.Narrow(0, 0, t))); // a full context needs no narrowed view (nor its backward)
        foreach (var block in H) x = block.Forward(x);
        return Head(x);
    }

    private Tensor Head(Tensor x) => Functional.Linear(Ln_F.Forward(x), Wte.Weight);

    /// <summary>The attention weights of every block and head for <paramref name="tokens"/> [1, T]: [layers][1, heads, T, T], in evaluation mode, without gradients.</summary>
    public Tensor[] AttentionMaps(Tensor tokens)
    {
        if (tokens.Rank != 2 || tokens.Size(1) > BlockSize) throw new ShapeException($"Gpt: expected token ids [batch, time ≤ {BlockSize}], got {tokens.Shape}.");
        using var _ = Tensor.NoGrad();
        var maps = new Tensor[NumLayers];
        var x = Wte.Forward(tokens) + Wpe.Weight.Narrow(0, 0, tokens.Size(1));
        for (int i = 0; i < NumLayers; i++)
        {
            var block = (TransformerBlock)H[i];
            maps[i] = block.Attn.Weights(block.Ln_1.Forward(x)).Detach();
            x = block.Forward(x);
        }
        return maps;
    }

    /// <summary>
    /// Runs new positions through the model with a key/value cache: <paramref name="tokens"/> [B, Tn] continue
    /// the <c>cache.Length</c> positions already cached; returns their logits [B, Tn, vocab].
    /// </summary>
    public Tensor Logits(Tensor tokens, KeyValueCache cache)
    {
        int start = cache.Length, t = tokens.Size(1);
        if (start + t > BlockSize) throw new ShapeException($"Gpt: positions {start}..{start + t - 1} do not fit the block size {BlockSize}.");
        var x = Wte.Forward(tokens) + Wpe.Weight.Narrow(0, start, t);
        for (int i = 0; i < NumLayers; i++) x = ((TransformerBlock)H[i]).Forward(x, cache[i]);
        return Head(x);
    }

    /// <summary>A cache for batch <paramref name="batch"/> and up to <paramref name="capacity"/> positions.</summary>
    public KeyValueCache NewCache(int batch = 1, int? capacity = null) =>
        new(NumLayers, batch, NumHeads, Width / NumHeads, Math.Min(capacity ?? BlockSize, BlockSize), Wte.Weight.DType);

    /// <summary>
    /// Decoding with a key/value cache: each new token runs one position through the model. When the context
    /// reaches <paramref name="maxContext"/> (at most the block size), the cache restarts from the most recent
    /// half of the context (one recomputation every maxContext/2 tokens), since learned positions cannot slide.
    /// </summary>
    public override IDecoder StartDecoding(int maxContext) => new CachedDecoder(this, Math.Clamp(maxContext, 1, BlockSize));

    private sealed class CachedDecoder(Gpt model, int maxContext) : IDecoder
    {
        private readonly KeyValueCache _cache = model.NewCache(1, maxContext);
        private readonly List<long> _context = [];

        public Tensor Append(long token)
        {
            using var _ = Tensor.NoGrad();
            _context.Add(token);
            Tensor logits;
            if (_cache.Length >= maxContext)
            {
                int keep = Math.Max(1, maxContext / 2);
                _context.RemoveRange(0, _context.Count - keep);
                _cache.Clear();
                logits = model.Logits(Tensor.FromArray(_context.ToArray(), [1, keep]), _cache);
            }
            else logits = model.Logits(Tensor.FromArray([token], [1, 1]), _cache);
            return logits.Select(0, 0).Select(0, logits.Size(1) - 1).Detach();
        }
    }
}
