namespace Backprop.Optim;

/// <summary>Adam with decoupled weight decay (Loshchilov and Hutter): exactly torch.optim.AdamW.</summary>
/// <remarks>
/// p ← p·(1 − lr·wd) first, then the Adam update from the undecayed gradient:
/// m ← β₁·m + (1 − β₁)·g; v ← β₂·v + (1 − β₂)·g²; p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
/// </remarks>
public sealed class AdamW : AdamBase
{
    /// <summary>AdamW over <paramref name="parameters"/>.</summary>
    public AdamW(IEnumerable<Tensor> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 1e-2, bool amsgrad = false, bool maximize = false)
        : this(OneGroup(parameters), lr, beta1, beta2, eps, weightDecay, amsgrad, maximize) { }

    /// <summary>AdamW over parameter groups; a group's own Lr and WeightDecay override the defaults given here.</summary>
    public AdamW(IEnumerable<ParamGroup> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 1e-2, bool amsgrad = false, bool maximize = false)
        : base(groups, lr, beta1, beta2, eps, weightDecay, amsgrad, maximize, decoupled: true) { }
}
