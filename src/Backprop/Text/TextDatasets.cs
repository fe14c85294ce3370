using Backprop.Data;

namespace Backprop.Text;

/// <summary>
/// Datasets for language models built from token ids: (context, next token) windows for the
/// fixed-window model, padded whole sequences (one name per row) and batch-major streams for
/// truncated backprop through time; and the splits the guides use.
/// </summary>
public static class TextDatasets
{
    /// <summary>
    /// makemore's training pairs over sequences that each start and end at a boundary (a name): for each
    /// token of a sequence and then the end boundary, the previous <paramref name="context"/> tokens
    /// (padded with the boundary before the start) and that token. Inputs int64 [N, context], targets
    /// int64 [N], N = total length + one per sequence.
    /// </summary>
    public static TensorDataset NextTokenWindows(IReadOnlyList<int[]> sequences, int context, int boundary)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentOutOfRangeException.ThrowIfLessThan(context, 1);
        long total = sequences.Sum(s => (long)s.Length + 1);
        if (total == 0 || sequences.Count == 0) throw new ArgumentException("TextDatasets.NextTokenWindows: no sequences given.", nameof(sequences));
        int rows = checked((int)total);
        var x = new long[rows * context];
        var y = new long[rows];
        var window = new long[context];
        int r = 0;
        foreach (var seq in sequences)
        {
            Array.Fill(window, boundary);
            for (int i = 0; i <= seq.Length; i++)
            {
                int next = i < seq.Length ? seq[i] : boundary;
                window.CopyTo(x, r * context);
                y[r++] = next;
                Array.Copy(window, 1, window, 0, context - 1);
                window[^1] = next;
            }
        }
        return new TensorDataset(Tensor.FromArray(x, [rows, context]), Tensor.FromArray(y, [rows]));
    }

    /// <summary>
    /// Whole sequences as rows for models that read a sequence at once (recurrent, GPT): row i is the
    /// boundary followed by sequence i, the target the sequence followed by the boundary; both padded to
    /// the longest with the boundary (inputs) and <paramref name="ignoreIndex"/> (targets, which
    /// cross-entropy skips). Inputs and targets int64 [N, longest + 1].
    /// </summary>
    public static TensorDataset PaddedSequences(IReadOnlyList<int[]> sequences, int boundary, long ignoreIndex = -1)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.Count == 0) throw new ArgumentException("TextDatasets.PaddedSequences: no sequences given.", nameof(sequences));
        int n = sequences.Count, len = sequences.Max(s => s.Length) + 1;
        var x = new long[n * len];
        var y = new long[n * len];
        Array.Fill(x, boundary);
        Array.Fill(y, ignoreIndex);
        for (int i = 0; i < n; i++)
        {
            var s = sequences[i];
            for (int t = 0; t < s.Length; t++)
            {
                x[i * len + t + 1] = s[t];
                y[i * len + t] = s[t];
            }
            y[i * len + s.Length] = boundary;
        }
        return new TensorDataset(Tensor.FromArray(x, [n, len]), Tensor.FromArray(y, [n, len]));
    }

    /// <summary>
    /// Contiguous windows of a token stream with the next token at every position (nanoGPT's batches):
    /// sample i is tokens[i .. i+context-1], its target tokens[i+1 .. i+context].
    /// </summary>
    public static CharWindowDataset SequenceWindows(int[] tokens, int context) => new(tokens, context, sequenceTargets: true);

    /// <summary>
    /// Shuffles <paramref name="items"/> with a seeded generator and cuts them into train, validation
    /// and test parts (the first <paramref name="trainFraction"/>, the next <paramref name="validationFraction"/>,
    /// the rest): makemore's 80/10/10 split of the names.
    /// </summary>
    public static (T[] Train, T[] Validation, T[] Test) ShuffleSplit<T>(IReadOnlyList<T> items, ulong seed, double trainFraction = 0.8, double validationFraction = 0.1)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (!(trainFraction > 0 && validationFraction >= 0 && trainFraction + validationFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(trainFraction), "TextDatasets.ShuffleSplit: the fractions must be positive and sum to at most 1.");
        T[] all = [.. items];
        new Generator(seed).Shuffle<T>(all);
        int n1 = (int)(all.Length * trainFraction), n2 = (int)(all.Length * (trainFraction + validationFraction));
        return (all[..n1], all[n1..n2], all[n2..]);
    }

    /// <summary>The first part of a token stream for training and the last <paramref name="validationFraction"/> for validation (nanoGPT's split).</summary>
    public static (int[] Train, int[] Validation) TailSplit(int[] tokens, double validationFraction = 0.1)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (!(validationFraction > 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "TextDatasets.TailSplit: the validation fraction must be between 0 and 1 (exclusive).");
        int cut = (int)(tokens.Length * (1 - validationFraction));
        return (tokens[..cut], tokens[cut..]);
    }
}

/// <summary>
/// A token stream cut into <see cref="BatchSize"/> contiguous streams read side by side, for truncated
/// backprop through time: chunk k holds, for every stream b, tokens [k·T, (k+1)·T) of stream b as input
/// and the same shifted by one as target, so row b of chunk k+1 continues row b of chunk k and a
/// recurrent model's carried state stays meaningful between chunks.
/// </summary>
public sealed class BpttBatches
{
    private readonly int[] _tokens;
    private readonly int _streamLength;

    /// <summary>Streams over <paramref name="tokens"/> (not copied).</summary>
    public BpttBatches(int[] tokens, int batchSize, int chunkLength)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkLength, 1);
        _streamLength = (tokens.Length - 1) / batchSize;
        if (_streamLength < chunkLength)
            throw new ArgumentException($"BpttBatches: {tokens.Length} tokens in {batchSize} streams give {_streamLength} tokens per stream, fewer than one chunk of {chunkLength}.", nameof(tokens));
        _tokens = tokens;
        BatchSize = batchSize;
        ChunkLength = chunkLength;
    }

    /// <summary>Streams read side by side (rows of a chunk).</summary>
    public int BatchSize { get; }

    /// <summary>Tokens per chunk and stream (T).</summary>
    public int ChunkLength { get; }

    /// <summary>Chunks in one pass over the streams.</summary>
    public int Count => _streamLength / ChunkLength;

    /// <summary>Chunk <paramref name="k"/>: inputs and targets int64 [BatchSize, ChunkLength].</summary>
    public (Tensor Input, Tensor Target) this[int k]
    {
        get
        {
            if ((uint)k >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(k), k, $"BpttBatches: chunk {k} is not in 0..{Count - 1}.");
            int b = BatchSize, t = ChunkLength;
            var x = new long[b * t];
            var y = new long[b * t];
            for (int s = 0; s < b; s++)
            {
                int start = s * _streamLength + k * t;
                for (int i = 0; i < t; i++)
                {
                    x[s * t + i] = _tokens[start + i];
                    y[s * t + i] = _tokens[start + i + 1];
                }
            }
            return (Tensor.FromArray(x, [b, t]), Tensor.FromArray(y, [b, t]));
        }
    }
}
