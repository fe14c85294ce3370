namespace Backprop.Data;

/// <summary>
/// Fixed-window language-model samples over a token sequence: sample i is the context
/// tokens[i .. i+contextLength-1] and the token that follows it, tokens[i+contextLength]. With
/// <c>sequenceTargets</c> the target is instead the whole context shifted by one (nanoGPT style),
/// so each position predicts its own next token.
/// </summary>
public sealed class CharWindowDataset : Dataset
{
    private readonly int[] _tokens;

    /// <summary>Windows over <paramref name="tokens"/> (not copied: do not modify the array afterwards).</summary>
    /// <param name="tokens">Token ids, e.g. <see cref="TextCorpus.Tokens"/> or one part of its split.</param>
    /// <param name="contextLength">Tokens per context.</param>
    /// <param name="sequenceTargets">Targets are the next token at every position (int64 [contextLength]) instead of after the last one (int64 scalar).</param>
    public CharWindowDataset(int[] tokens, int contextLength, bool sequenceTargets = false)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (contextLength <= 0)
            throw new ArgumentOutOfRangeException(nameof(contextLength), contextLength, "CharWindowDataset: contextLength must be positive.");
        if (tokens.Length <= contextLength)
            throw new ArgumentException(
                $"CharWindowDataset: {tokens.Length} tokens are too few for a context of {contextLength}; at least {contextLength + 1} are needed for one sample.", nameof(tokens));
        _tokens = tokens;
        ContextLength = contextLength;
        SequenceTargets = sequenceTargets;
    }

    /// <summary>Tokens per context.</summary>
    public int ContextLength { get; }

    /// <summary>Whether targets are whole shifted sequences rather than one next token.</summary>
    public bool SequenceTargets { get; }

    /// <inheritdoc/>
    public override int Count => _tokens.Length - ContextLength;

    /// <inheritdoc/>
    public override (Tensor Input, Tensor Target) this[int index]
    {
        get
        {
            var b = GetBatch([CheckIndex(index)]);
            return (b.Input.Select(0, 0), b.Target.Select(0, 0));
        }
    }

    /// <inheritdoc/>
    public override Batch GetBatch(ReadOnlySpan<int> indices)
    {
        if (indices.IsEmpty)
            throw new ArgumentException("CharWindowDataset.GetBatch: no indices given; a batch needs at least one sample.", nameof(indices));
        int n = indices.Length, c = ContextLength;
        var x = Tensor.HostEmpty<long>([n, c]);
        var y = SequenceTargets ? Tensor.HostEmpty<long>([n, c]) : Tensor.HostEmpty<long>([n]);
        var xs = x.Span<long>();
        var ys = y.Span<long>();
        for (int b = 0; b < n; b++)
        {
            int start = CheckIndex(indices[b]);
            var window = _tokens.AsSpan(start, c + 1);
            var row = xs.Slice(b * c, c);
            for (int k = 0; k < c; k++) row[k] = window[k];
            if (SequenceTargets)
            {
                var trow = ys.Slice(b * c, c);
                for (int k = 0; k < c; k++) trow[k] = window[k + 1];
            }
            else
                ys[b] = window[c];
        }
        return new Batch(x, y);
    }
}
