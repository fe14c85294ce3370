using Backprop.NN;

namespace Backprop.Text;

/// <summary>
/// A model that reads token ids and predicts the next token at every position: the common shape of
/// the fixed-window model, the recurrent models and the GPT, so that one training loop, one sampler
/// and one <c>backprop generate</c> serve them all.
/// </summary>
public abstract class LanguageModel : Module
{
    /// <summary>The number of tokens the model predicts over (the last dimension of <see cref="Logits"/>).</summary>
    public abstract int VocabSize { get; }

    /// <summary>
    /// The next-token logits at every position: <paramref name="tokens"/> is <c>[B, T]</c> (int64 ids),
    /// the result <c>[B, T, VocabSize]</c>; position <c>t</c> sees tokens <c>0..t</c> only.
    /// </summary>
    public abstract Tensor Logits(Tensor tokens);

    /// <inheritdoc cref="Logits"/>
    public override Tensor Forward(Tensor input) => Logits(input);

    /// <summary>
    /// For recurrent models trained with truncated backprop through time: forgets the state carried
    /// from one call of <see cref="Logits"/> to the next (a new, unrelated stream begins). Models
    /// without carried state do nothing.
    /// </summary>
    public virtual void ResetState() { }

    /// <summary>
    /// For recurrent models trained with truncated backprop through time: keeps the carried state's
    /// values but cuts it from the graph, so the next chunk's backward stops here. Models without
    /// carried state do nothing.
    /// </summary>
    public virtual void DetachState() { }

    /// <summary>
    /// The state carried from one <see cref="Logits"/> call to the next (truncated BPTT), by name, e.g.
    /// <c>h</c> and <c>c</c> of an LSTM, each <c>[layers, batch, hidden]</c>; empty when nothing is
    /// carried. A checkpoint saves it so that a resumed run continues the chunk it stopped in
    /// exactly (<see cref="SetCarriedState"/>). The tensors are the model's own: copy them to keep them.
    /// </summary>
    public virtual IReadOnlyList<KeyValuePair<string, Tensor>> CarriedState() => [];

    /// <summary>
    /// Restores what <see cref="CarriedState"/> returned (values are copied into the model's own
    /// buffers, outside any graph); an empty list forgets the carried state like <see cref="ResetState"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A name or shape the model does not carry.</exception>
    public virtual void SetCarriedState(IReadOnlyList<KeyValuePair<string, Tensor>> state)
    {
        if (state.Count > 0)
            throw new ArgumentException($"{GetType().Name} carries no state between calls, but state '{state[0].Key}' was given.", nameof(state));
    }

    /// <summary>
    /// Starts incremental decoding for generation. The default recomputes the whole (cropped) context
    /// for every new token; models override it with something cheaper (a key/value cache, a carried
    /// hidden state).
    /// </summary>
    /// <param name="maxContext">The longest context the model may see; older tokens are dropped.</param>
    public virtual IDecoder StartDecoding(int maxContext) => new FullContextDecoder(this, maxContext);
}

/// <summary>Incremental decoding: feed tokens one at a time and read the next-token logits.</summary>
public interface IDecoder
{
    /// <summary>Appends one token to the context and returns the logits for the token after it (<c>[VocabSize]</c>).</summary>
    Tensor Append(long token);
}

/// <summary>The decoder without a cache: each new token reruns the model over the whole context window.</summary>
public sealed class FullContextDecoder(LanguageModel model, int maxContext) : IDecoder
{
    private readonly List<long> _context = [];

    /// <inheritdoc />
    public Tensor Append(long token)
    {
        _context.Add(token);
        if (_context.Count > maxContext) _context.RemoveAt(0);
        using var _ = Tensor.NoGrad();
        var ids = Tensor.FromArray(_context.ToArray(), [1, _context.Count]);
        var logits = model.Logits(ids);                       // [1, T, V]
        return logits.Select(0, 0).Select(0, _context.Count - 1).Detach();
    }
}
