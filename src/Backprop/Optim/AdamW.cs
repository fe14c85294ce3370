using System.Text.Json.Nodes;

namespace Backprop.Optim;

/// <summary>Adam with decoupled weight decay (Loshchilov and Hutter): exactly torch.optim.AdamW.</summary>
/// <remarks>
/// p ← p·(1 − lr·wd) first, then the Adam update from the undecayed gradient:
/// m ← β₁·m + (1 − β₁)·g; v ← β₂·v + (1 − β₂)·g²; p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
/// </remarks>
public sealed class AdamW : Optimizer
{
    private readonly AdamSteps _steps;

    /// <summary>AdamW over <paramref name="parameters"/>.</summary>
    public AdamW(IEnumerable<Tensor> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 1e-2, bool amsgrad = false, bool maximize = false)
        : this(OneGroup(parameters), lr, beta1, beta2, eps, weightDecay, amsgrad, maximize) { }

    /// <summary>AdamW over parameter groups; a group's own Lr and WeightDecay override the defaults given here.</summary>
    public AdamW(IEnumerable<ParamGroup> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 1e-2, bool amsgrad = false, bool maximize = false)
        : base(groups, lr, weightDecay, AdamSteps.StateNames)
    {
        _steps = new AdamSteps(this, decoupled: true);
        _steps.Validate(beta1, beta2, eps);
        (Beta1, Beta2, Eps, AmsGrad, Maximize) = (beta1, beta2, eps, amsgrad, maximize);
    }

    /// <summary>Decay rate β₁ of the first-moment average.</summary>
    public double Beta1 { get; private set; }

    /// <summary>Decay rate β₂ of the second-moment average.</summary>
    public double Beta2 { get; private set; }

    /// <summary>Added to the denominator for numerical stability.</summary>
    public double Eps { get; private set; }

    /// <summary>Whether the AMSGrad variant (running maximum of the second moment) is used.</summary>
    public bool AmsGrad { get; private set; }

    /// <summary>Whether the objective is maximized instead of minimized.</summary>
    public bool Maximize { get; private set; }

    protected override void Update(int index, Tensor param, Tensor grad, ParamGroup group, long step) =>
        _steps.Update(index, param, grad, group, step, Beta1, Beta2, Eps, AmsGrad, Maximize);

    protected override void SaveHyperparameters(JsonObject h) => AdamSteps.Save(h, Beta1, Beta2, Eps, AmsGrad, Maximize);

    protected override void LoadHyperparameters(JsonObject h) =>
        (Beta1, Beta2, Eps, AmsGrad, Maximize) = _steps.Load(h, Beta1, Beta2, Eps, AmsGrad, Maximize);
}
