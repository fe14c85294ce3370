namespace Backprop.NN;

/// <summary>
/// Keys and values of earlier positions for incremental decoding: per layer, [B, H, capacity, D] buffers
/// filled up to <see cref="Length"/>. <see cref="MultiHeadAttention.Forward(Tensor, KeyValueCache.Layer)"/>
/// appends the new positions' keys and values and attends over everything cached.
/// </summary>
public sealed class KeyValueCache
{
    /// <summary>One layer's buffers.</summary>
    public sealed class Layer(Tensor keys, Tensor values)
    {
        /// <summary>Keys [B, H, capacity, D].</summary>
        public Tensor Keys { get; } = keys;
        /// <summary>Values [B, H, capacity, D].</summary>
        public Tensor Values { get; } = values;
        /// <summary>Positions filled.</summary>
        public int Length { get; internal set; }
    }

    private readonly Layer[] _layers;

    /// <summary>A cache of <paramref name="capacity"/> positions for <paramref name="layers"/> layers.</summary>
    public KeyValueCache(int layers, int batch, int heads, int headDim, int capacity, DType dtype = DType.Float32)
    {
        if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "KeyValueCache: capacity must be at least 1.");
        Capacity = capacity;
        _layers = new Layer[layers];
        for (int i = 0; i < layers; i++)
            _layers[i] = new Layer(Tensor.Zeros([batch, heads, capacity, headDim], dtype), Tensor.Zeros([batch, heads, capacity, headDim], dtype));
    }

    /// <summary>Positions each layer can hold.</summary>
    public int Capacity { get; }

    /// <summary>Positions filled (the same in every layer).</summary>
    public int Length => _layers.Length == 0 ? 0 : _layers[0].Length;

    /// <summary>Layer <paramref name="i"/>'s buffers.</summary>
    public Layer this[int i] => _layers[i];

    /// <summary>Empties the cache (the buffers are kept).</summary>
    public void Clear()
    {
        foreach (var l in _layers) l.Length = 0;
    }
}

/// <summary>
/// Multi-head self-attention over [B, T, C]: one fused projection to queries, keys and values
/// (<c>c_attn</c>, C → 3C, as in GPT-2), <see cref="NumHeads"/> heads of size C / heads through
/// <see cref="Functional.ScaledDotProductAttention"/> (fused, causal when <see cref="Causal"/>), dropout on the
/// attention weights in training, and the output projection <c>c_proj</c>.
/// </summary>
public sealed class MultiHeadAttention : Module, IStochasticModule, IPerSampleDropout
{
    private readonly Generator _generator;

    /// <summary>The query, key and value projections in one layer [3C, C] (rows: queries, then keys, then values).</summary>
    public Linear CAttn { get; private set; }

    /// <summary>The output projection [C, C].</summary>
    public Linear CProj { get; private set; }

    /// <summary>Number of heads.</summary>
    public int NumHeads { get; }

    /// <summary>The model width C.</summary>
    public int EmbedDim { get; }

    /// <summary>Whether position t sees positions ≤ t only.</summary>
    public bool Causal { get; }

    /// <summary>Dropout probability on the attention weights (training only).</summary>
    public double Dropout { get; }

    /// <summary>Creates the layer; <paramref name="embedDim"/> must be a multiple of <paramref name="numHeads"/>.</summary>
    public MultiHeadAttention(int embedDim, int numHeads, bool causal = true, double dropout = 0, bool bias = true,
        Generator? generator = null, DType dtype = DType.Float32)
    {
        if (numHeads < 1 || embedDim < 1 || embedDim % numHeads != 0)
            throw new ArgumentException($"MultiHeadAttention: the width {embedDim} must be a positive multiple of the number of heads {numHeads}.");
        if (dropout < 0 || dropout > 1) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "MultiHeadAttention: dropout must be in [0, 1].");
        (EmbedDim, NumHeads, Causal, Dropout) = (embedDim, numHeads, causal, dropout);
        CAttn = new Linear(embedDim, 3 * embedDim, bias, generator: generator, dtype: dtype);
        CProj = new Linear(embedDim, embedDim, bias, generator: generator, dtype: dtype);
        _generator = new Generator((generator ?? Generator.Default).NextUInt64());
    }

    /// <summary>Size of each head.</summary>
    public int HeadDim => EmbedDim / NumHeads;

    /// <inheritdoc/>
    public Generator? TrainingGenerator => Dropout > 0 ? _generator : null;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        if (!(Training && Dropout > 0))
        {
            if (input.Rank != 3 || input.Size(2) != EmbedDim)
                throw new ShapeException($"MultiHeadAttention: expected input of shape [batch, time, {EmbedDim}], got {input.Shape}.");
            return CProj.Forward(Functional.SelfAttention(CAttn.Forward(input), NumHeads, Causal)); // fused, in the packed layouts
        }
        var (q, k, v, b, t) = Project(input);
        var y = _slot is null
            ? Functional.ScaledDotProductAttention(q, k, v, Causal, dropout: Dropout, training: Training, generator: _generator)
            // the attention weights [B, H, T, T] of sample i dropped with a mask drawn from its global index
            : Functional.DropoutPerSample(Functional.AttentionWeights(q, k, Causal), Dropout, _slot.NextKey(), _slot.FirstSample).MatMul(v);
        return CProj.Forward(y.Transpose(1, 2).Reshape(b, t, EmbedDim));
    }

    private SampleMaskSlot? _slot;

    void IPerSampleDropout.UsePerSampleMasks(SampleMaskSlot slot) => _slot = slot;

    /// <summary>
    /// Incremental self-attention: appends the keys and values of the new positions of <paramref name="input"/>
    /// [B, Tn, C] to <paramref name="cache"/> and lets each new position attend to every cached one before it
    /// (itself included). Meant for decoding under <see cref="Tensor.NoGrad"/>.
    /// </summary>
    public Tensor Forward(Tensor input, KeyValueCache.Layer cache)
    {
        var (q, k, v, b, t) = Project(input);
        int start = cache.Length;
        if (start + t > cache.Keys.Size(2))
            throw new InvalidOperationException($"MultiHeadAttention: the key/value cache holds {cache.Keys.Size(2)} positions; {start} are filled and {t} more do not fit.");
        cache.Keys.Narrow(2, start, t).CopyFrom(k);
        cache.Values.Narrow(2, start, t).CopyFrom(v);
        cache.Length = start + t;
        var keys = cache.Keys.Narrow(2, 0, start + t);
        var values = cache.Values.Narrow(2, 0, start + t);
        var y = Functional.ScaledDotProductAttention(q, keys, values, causal: Causal);
        return CProj.Forward(y.Transpose(1, 2).Reshape(b, t, EmbedDim));
    }

    /// <summary>The attention weights [B, H, T, T] this layer computes for <paramref name="input"/> [B, T, C] (what each position attends to).</summary>
    public Tensor Weights(Tensor input)
    {
        var (q, k, _, _, _) = Project(input);
        return Functional.AttentionWeights(q, k, Causal);
    }

    private (Tensor Q, Tensor K, Tensor V, int B, int T) Project(Tensor input)
    {
        if (input.Rank != 3 || input.Size(2) != EmbedDim)
            throw new ShapeException($"MultiHeadAttention: expected input of shape [batch, time, {EmbedDim}], got {input.Shape}.");
        int b = input.Size(0), t = input.Size(1);
        var qkv = CAttn.Forward(input).View(b, t, 3, NumHeads, HeadDim); // [B, T, 3, H, D]
        return (qkv.Select(2, 0).Transpose(1, 2), qkv.Select(2, 1).Transpose(1, 2), qkv.Select(2, 2).Transpose(1, 2), b, t);
    }

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"embed_dim={EmbedDim}, num_heads={NumHeads}, causal={Causal}, dropout={Dropout}";
}

/// <summary>The transformer's feed-forward part: <c>c_fc</c> (C → 4C) with GELU fused into it, then <c>c_proj</c> (4C → C).</summary>
public sealed class Mlp : Module
{
    /// <summary>The widening layer.</summary>
    public Linear CFc { get; private set; }

    /// <summary>The projection back to the model width.</summary>
    public Linear CProj { get; private set; }

    /// <summary>Creates the two layers, the hidden width <paramref name="hidden"/> (4·width by default).</summary>
    public Mlp(int width, int? hidden = null, bool bias = true, Generator? generator = null, DType dtype = DType.Float32)
    {
        CFc = new Linear(width, hidden ?? 4 * width, bias, generator: generator, dtype: dtype);
        CProj = new Linear(hidden ?? 4 * width, width, bias, generator: generator, dtype: dtype);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => CProj.Forward(CFc.Forward(input, FusedActivation.Gelu));
}

/// <summary>
/// A pre-norm transformer block (GPT-2's): x + dropout(attn(ln_1(x))), then x + dropout(mlp(ln_2(x))), with
/// causal multi-head self-attention and a GELU MLP four times as wide.
/// </summary>
public sealed class TransformerBlock : Module
{
    /// <summary>The layer norm before attention.</summary>
    public LayerNorm Ln_1 { get; private set; }

    /// <summary>The self-attention.</summary>
    public MultiHeadAttention Attn { get; private set; }

    /// <summary>The layer norm before the MLP.</summary>
    public LayerNorm Ln_2 { get; private set; }

    /// <summary>The feed-forward part.</summary>
    public Mlp Mlp { get; private set; }

    /// <summary>Dropout on each residual branch (training only).</summary>
    public Dropout ResidDropout { get; private set; }

    /// <summary>Creates the block.</summary>
    public TransformerBlock(int width, int heads, double dropout = 0, bool causal = true, bool bias = true,
        Generator? generator = null, DType dtype = DType.Float32)
    {
        Ln_1 = new LayerNorm(width, dtype: dtype);
        Attn = new MultiHeadAttention(width, heads, causal, dropout, bias, generator, dtype);
        Ln_2 = new LayerNorm(width, dtype: dtype);
        Mlp = new Mlp(width, bias: bias, generator: generator, dtype: dtype);
        ResidDropout = new Dropout(dropout, generator == null ? null : new Generator(generator.NextUInt64()));
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var x = input + ResidDropout.Forward(Attn.Forward(Ln_1.Forward(input)));
        return x + ResidDropout.Forward(Mlp.Forward(Ln_2.Forward(x)));
    }

    /// <summary>The block over new positions with a key/value cache (see <see cref="MultiHeadAttention.Forward(Tensor, KeyValueCache.Layer)"/>).</summary>
    public Tensor Forward(Tensor input, KeyValueCache.Layer cache)
    {
        var x = input + Attn.Forward(Ln_1.Forward(input), cache);
        return x + Mlp.Forward(Ln_2.Forward(x));
    }
}
