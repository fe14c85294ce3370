namespace Backprop.Backends;

/// <summary>One SGD step's settings (torch.optim.SGD); <see cref="Init"/>: the momentum buffer is new and starts at the gradient.</summary>
internal readonly record struct SgdHyper(double Lr, double WeightDecay, double Momentum, double Dampening, bool Nesterov, bool Maximize, bool Init);

/// <summary>
/// One Adam or AdamW step's settings (torch.optim.Adam/AdamW); <see cref="Step"/> counts this parameter's
/// updates from 1 (for the bias corrections); <see cref="Decoupled"/>: AdamW's p·(1 − lr·wd) instead of L2.
/// </summary>
internal readonly record struct AdamHyper(double Lr, double Beta1, double Beta2, double Eps, double WeightDecay,
    bool Decoupled, bool AmsGrad, bool Maximize, long Step);

/// <summary>One RMSprop step's settings (torch.optim.RMSprop).</summary>
internal readonly record struct RmsPropHyper(double Lr, double Alpha, double Eps, double WeightDecay, double Momentum,
    bool Centered, bool Maximize);

/// <summary>One AdaGrad step's settings (torch.optim.Adagrad); <see cref="Step"/> counts from 1 (for the learning-rate decay).</summary>
internal readonly record struct AdaGradHyper(double Lr, double LrDecay, double WeightDecay, double Eps, bool Maximize, long Step);

/// <summary>
/// The optimizers' fused updates and the norms of gradient clipping. Every view of one update is contiguous,
/// float32 or float64, of the parameter's shape and dtype; the parameter and its state are updated in place.
/// A state buffer a setting does not use (no momentum, not centered, no AMSGrad) is passed as <c>default</c>.
/// </summary>
internal partial interface IBackend
{
    /// <summary>
    /// SGD: g ← ±grad + wd·p; with momentum μ: b ← g (Init) or μ·b + (1 − dampening)·g, then g ← g + μ·b
    /// (Nesterov) or b; p ← p − lr·g. <paramref name="momentumBuffer"/> is used when μ ≠ 0.
    /// </summary>
    void SgdStep(in View param, in View grad, in View momentumBuffer, in SgdHyper h);

    /// <summary>
    /// Adam/AdamW: g ← ±grad (+ wd·p for Adam; p ← p·(1 − lr·wd) first for AdamW); m ← β₁·m + (1 − β₁)·g;
    /// v ← β₂·v + (1 − β₂)·g²; AMSGrad: v̂ ← max(v̂, v); p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
    /// </summary>
    void AdamStep(in View param, in View grad, in View expAvg, in View expAvgSq, in View maxExpAvgSq, in AdamHyper h);

    /// <summary>
    /// RMSprop: g ← ±grad + wd·p; s ← α·s + (1 − α)·g²; centered: ḡ ← α·ḡ + (1 − α)·g, d ← √(s − ḡ²) + ε,
    /// else d ← √s + ε; momentum μ &gt; 0: b ← μ·b + g/d, p ← p − lr·b; else p ← p − lr·g/d.
    /// </summary>
    void RmsPropStep(in View param, in View grad, in View squareAvg, in View momentumBuffer, in View gradAvg, in RmsPropHyper h);

    /// <summary>AdaGrad: g ← ±grad + wd·p; s ← s + g²; p ← p − lr/(1 + (t − 1)·lrDecay) · g / (√s + ε).</summary>
    void AdaGradStep(in View param, in View grad, in View sum, in AdaGradHyper h);

    /// <summary>
    /// Σ|x|ᵖ over the elements of the contiguous float view <paramref name="x"/>, accumulated in double, or
    /// max |x| for p = +∞ (NaN if any element is NaN; 0 for no elements).
    /// </summary>
    double NormPower(in View x, double p);
}
