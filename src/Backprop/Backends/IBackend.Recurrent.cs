namespace Backprop.Backends;

/// <summary>The recurrent cells the fused sequence kernels compute (gate order and formulas as PyTorch's).</summary>
internal enum RecurrentCell
{
    /// <summary>h' = tanh(W_ih x + b_ih + W_hh h + b_hh). One gate block.</summary>
    RnnTanh,
    /// <summary>
    /// Gates i, f, g, o = σ, σ, tanh, σ of (W_ih x + b_ih + W_hh h + b_hh); c' = f·c + i·g; h' = o·tanh(c').
    /// Four gate blocks.
    /// </summary>
    Lstm,
    /// <summary>
    /// r, z = σ(W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z}); n = tanh(W_in x + b_in + r·(W_hn h + b_hn));
    /// h' = (1 − z)·n + z·h. Three gate blocks.
    /// </summary>
    Gru,
}

internal static class RecurrentCells
{
    /// <summary>How many H-wide blocks the weights have (rows of W_ih are Blocks·H).</summary>
    public static int Blocks(this RecurrentCell cell) => cell switch { RecurrentCell.Lstm => 4, RecurrentCell.Gru => 3, _ => 1 };

    /// <summary>
    /// How many H-wide blocks of activations the forward saves per step and row for the backward:
    /// RNN h'; LSTM i, f, g, o, tanh(c'); GRU r, z, n, W_hn h + b_hn.
    /// </summary>
    public static int SavedBlocks(this RecurrentCell cell) => cell switch { RecurrentCell.Lstm => 5, RecurrentCell.Gru => 4, _ => 1 };
}

internal partial interface IBackend
{
    /// <summary>
    /// A recurrent layer over a whole sequence, time-major. <paramref name="xw"/> [T, B, G·H] holds the
    /// input projections W_ih x_t + b_ih of every step (computed by one GEMM before the call);
    /// <paramref name="whh"/> [G·H, H], <paramref name="bhh"/> [G·H]. <paramref name="hs"/> [≥ T+1, B, H]
    /// holds h_0 in slot 0 on entry and receives h_1..h_T in slots 1..T; for the LSTM
    /// <paramref name="cs"/> [T+1, B, H] likewise holds c_0 and receives c_1..c_T (ignored otherwise).
    /// <paramref name="saved"/> [T, B, S·H] receives the activations the backward needs
    /// (<see cref="RecurrentCells.SavedBlocks"/>); <paramref name="hw"/> [B, G·H] is scratch. Each step
    /// is one GEMM (h_{t−1}·W_hhᵀ) and one fused elementwise pass. All views contiguous, one float dtype.
    /// </summary>
    void RecurrentForward(RecurrentCell cell, in View xw, in View whh, in View bhh, in View hs, in View cs, in View saved, in View hw);

    /// <summary>
    /// Backprop through time over the saved forward of <see cref="RecurrentForward"/>. <paramref name="dhs"/>
    /// has the shape of the forward's hs (slot t+1: the gradient arriving at h_{t+1} from outside the
    /// recurrence, slot 0 at h_0) and, for the LSTM, one more slot T+1 with the gradient of c_T.
    /// Writes the gate pre-activation gradients of every step into <paramref name="dgi"/> [T, B, G·H] (the
    /// input side: dW_ih, db_ih and dx follow from it) and <paramref name="dgh"/> (the recurrent side; the
    /// same view as dgi except for the GRU, where the n block differs), and the gradients of h_0 and
    /// (LSTM) c_0 into <paramref name="dh"/> and <paramref name="dc"/> [B, H]. One fused elementwise pass
    /// and one GEMM (dgh_t·W_hh) per step.
    /// </summary>
    void RecurrentBackward(RecurrentCell cell, in View whh, in View hs, in View cs, in View saved, in View dhs,
        in View dgi, in View dgh, in View dh, in View dc);
}
