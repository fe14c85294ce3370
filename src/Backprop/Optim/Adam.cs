using System.Text.Json.Nodes;
using Backprop.Backends;

namespace Backprop.Optim;

/// <summary>Adam (Kingma and Ba) with optional AMSGrad and L2 weight decay: exactly torch.optim.Adam.</summary>
/// <remarks>
/// g ← ±∇ + wd·p; m ← β₁·m + (1 − β₁)·g; v ← β₂·v + (1 − β₂)·g²; (AMSGrad: v̂ ← max(v̂, v));
/// p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
/// </remarks>
public sealed class Adam : AdamBase
{

    /// <summary>Adam over <paramref name="parameters"/>.</summary>
    public Adam(IEnumerable<Tensor> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 0, bool amsgrad = false, bool maximize = false)
        : this(OneGroup(parameters), lr, beta1, beta2, eps, weightDecay, amsgrad, maximize) { }

    /// <summary>Adam over parameter groups; a group's own Lr and WeightDecay override the defaults given here.</summary>
    public Adam(IEnumerable<ParamGroup> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 0, bool amsgrad = false, bool maximize = false)
        : base(groups, lr, beta1, beta2, eps, weightDecay, amsgrad, maximize, decoupled: false) { }

}

/// <summary>What <see cref="Adam"/> and <see cref="AdamW"/> share: the hyperparameters, the update and their place in the state dict.</summary>
public abstract class AdamBase : Optimizer
{
    private readonly AdamSteps _steps;

    private protected AdamBase(IEnumerable<ParamGroup> groups, double lr, double beta1, double beta2, double eps, double weightDecay,
        bool amsgrad, bool maximize, bool decoupled)
        : base(groups, lr, weightDecay, AdamSteps.StateNames)
    {
        _steps = new AdamSteps(this, decoupled);
        _steps.Validate(beta1, beta2, eps);
        (Beta1, Beta2, Eps, AmsGrad, Maximize) = (beta1, beta2, eps, amsgrad, maximize);
    }

    /// <summary>Decay rate β₁ of the first-moment average.</summary>
    public double Beta1 { get; internal set; }

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

/// <summary>What Adam and AdamW share: validation, state layout, the per-parameter scalars and the kernel launch.</summary>
internal sealed class AdamSteps
{
    internal static readonly string[] StateNames = ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
    internal const int ExpAvg = 0, ExpAvgSq = 1, MaxExpAvgSq = 2;

    private readonly Optimizer _owner;
    private readonly bool _decoupled;

    public AdamSteps(Optimizer owner, bool decoupled)
    {
        _owner = owner;
        _decoupled = decoupled;
    }

    public void Validate(double beta1, double beta2, double eps)
    {
        string name = _owner.Name;
        if (!(beta1 >= 0 && beta1 < 1))
            throw new ArgumentOutOfRangeException(nameof(beta1), beta1, $"{name}: invalid beta1 {beta1}; it must be in [0, 1).");
        if (!(beta2 >= 0 && beta2 < 1))
            throw new ArgumentOutOfRangeException(nameof(beta2), beta2, $"{name}: invalid beta2 {beta2}; it must be in [0, 1).");
        if (!(eps >= 0) || double.IsInfinity(eps))
            throw new ArgumentOutOfRangeException(nameof(eps), eps, $"{name}: invalid eps {eps}; it must be a finite number >= 0.");
    }

    public void Update(int index, Tensor param, Tensor grad, ParamGroup group, long step,
        double beta1, double beta2, double eps, bool amsgrad, bool maximize)
    {
        var m = _owner.State(index, ExpAvg, 0);
        var v = _owner.State(index, ExpAvgSq, 0);
        var vmax = amsgrad ? _owner.State(index, MaxExpAvgSq, 0) : null;
        var h = new AdamHyper(group.Lr, beta1, beta2, eps, group.WeightDecay, _decoupled, amsgrad, maximize, step);
        param.Backend.AdamStep(param.V, grad.V, m.V, v.V, vmax is null ? default : vmax.V, h);
    }

    public static void Save(JsonObject h, double beta1, double beta2, double eps, bool amsgrad, bool maximize)
    {
        h["beta1"] = beta1;
        h["beta2"] = beta2;
        h["eps"] = eps;
        h["amsgrad"] = amsgrad;
        h["maximize"] = maximize;
    }

    public (double, double, double, bool, bool) Load(JsonObject h, double beta1, double beta2, double eps, bool amsgrad, bool maximize)
    {
        double b1 = MetaValues.Number(h["beta1"], "hyperparameters.beta1") ?? beta1, b2 = MetaValues.Number(h["beta2"], "hyperparameters.beta2") ?? beta2,
            e = MetaValues.Number(h["eps"], "hyperparameters.eps") ?? eps;
        Validate(b1, b2, e);
        return (b1, b2, e, MetaValues.Flag(h["amsgrad"], "hyperparameters.amsgrad") ?? amsgrad, MetaValues.Flag(h["maximize"], "hyperparameters.maximize") ?? maximize);
    }
}
