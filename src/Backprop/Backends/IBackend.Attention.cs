namespace Backprop.Backends;

internal partial interface IBackend
{
    /// <summary>
    /// Scaled dot-product attention, o = softmax(scale·q·kᵀ + mask)·v, computed key block by key block with an
    /// online (running-max) softmax so that no [Tq, Tk] score matrix exists: q [B, H, Tq, D], k [B, H, Tk, D],
    /// v [B, H, Tk, Dv] and o [B, H, Tq, Dv] are views of any strides whose last dimension has stride 1; the
    /// log-sum-exp of each row of scores goes into the contiguous <paramref name="lse"/> [B, H, Tq]. With
    /// <paramref name="causal"/>, query i sees keys j ≤ i + Tk − Tq (the masks of a sequence and of a key/value
    /// cache alike; Tq ≤ Tk).
    /// </summary>
    void AttentionForward(in View q, in View k, in View v, in View o, in View lse, bool causal, double scale);

    /// <summary>
    /// The attention backward from the saved output and log-sum-exp (FlashAttention-2): recomputes each score
    /// and probability p = exp(scale·q·k − lse) where needed, and writes dq, dk, dv (views like q, k, v,
    /// overwritten): dv = pᵀ·do, ds = p·(do·vᵀ − rowsum(do·o)), dq = scale·ds·k, dk = scale·dsᵀ·q.
    /// </summary>
    void AttentionBackward(in View q, in View k, in View v, in View o, in View dO, in View lse,
        in View dq, in View dk, in View dv, bool causal, double scale);
}
