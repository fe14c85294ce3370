namespace Backprop.NN;

/// <summary>
/// A lookup table: int64 indices of any shape → vectors, output shape [..., dim]. Weight
/// [numEmbeddings, dim] ~ N(0, 1) as in PyTorch. Backward adds each output gradient row into the
/// rows that were looked up (repeated indices accumulate).
/// </summary>
public sealed class Embedding : Module
{
    /// <summary>The table, shape [numEmbeddings, embeddingDim].</summary>
    public Parameter Weight { get; private set; }

    /// <summary>Number of rows.</summary>
    public int NumEmbeddings { get; }

    /// <summary>Vector size.</summary>
    public int EmbeddingDim { get; }

    /// <summary>Creates the table.</summary>
    public Embedding(int numEmbeddings, int embeddingDim, Generator? generator = null, DType dtype = DType.Float32)
    {
        if (numEmbeddings <= 0 || embeddingDim <= 0)
            throw new ArgumentOutOfRangeException(nameof(numEmbeddings), $"Embedding: sizes must be positive, got {numEmbeddings} x {embeddingDim}.");
        NumEmbeddings = numEmbeddings;
        EmbeddingDim = embeddingDim;
        Weight = new Parameter(Tensor.Randn([numEmbeddings, embeddingDim], generator, dtype));
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.Embedding(input, Weight);

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"{NumEmbeddings}, {EmbeddingDim}";
}
