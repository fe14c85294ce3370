using System.Text.Json.Nodes;
using Backprop.Backends;

namespace Backprop.Optim;

/// <summary>RMSprop (Hinton) with optional momentum, centering and L2 weight decay: exactly torch.optim.RMSprop.</summary>
/// <remarks>
/// g ← ±∇ + wd·p; s ← α·s + (1 − α)·g²; centered: ḡ ← α·ḡ + (1 − α)·g and d ← √(s − ḡ²) + ε,
/// else d ← √s + ε; with momentum μ: b ← μ·b + g/d and p ← p − lr·b, else p ← p − lr·g/d.
/// </remarks>
public sealed class RmsProp : Optimizer
{
    private const int SquareAvg = 0, MomentumBuffer = 1, GradAvg = 2;

    /// <summary>RMSprop over <paramref name="parameters"/>.</summary>
    public RmsProp(IEnumerable<Tensor> parameters, double lr = 1e-2, double alpha = 0.99, double eps = 1e-8,
        double weightDecay = 0, double momentum = 0, bool centered = false, bool maximize = false)
        : this(OneGroup(parameters), lr, alpha, eps, weightDecay, momentum, centered, maximize) { }

    /// <summary>RMSprop over parameter groups; a group's own Lr and WeightDecay override the defaults given here.</summary>
    public RmsProp(IEnumerable<ParamGroup> groups, double lr = 1e-2, double alpha = 0.99, double eps = 1e-8,
        double weightDecay = 0, double momentum = 0, bool centered = false, bool maximize = false)
        : base(groups, lr, weightDecay, ["square_avg", "momentum_buffer", "grad_avg"])
    {
        Validate(alpha, eps, momentum);
        (Alpha, Eps, Momentum, Centered, Maximize) = (alpha, eps, momentum, centered, maximize);
    }

    /// <summary>Smoothing constant of the squared-gradient average.</summary>
    public double Alpha { get; private set; }

    /// <summary>Added to the denominator for numerical stability.</summary>
    public double Eps { get; private set; }

    /// <summary>Momentum factor (0: none).</summary>
    public double Momentum { get; internal set; }

    /// <summary>Whether the gradient's variance (not its raw second moment) normalizes the step.</summary>
    public bool Centered { get; private set; }

    /// <summary>Whether the objective is maximized instead of minimized.</summary>
    public bool Maximize { get; private set; }

    private void Validate(double alpha, double eps, double momentum)
    {
        CheckNonNegative(alpha, "alpha", "alpha");
        CheckNonNegative(eps, "eps", "eps");
        CheckNonNegative(momentum, "momentum", "momentum");
    }

    protected override void Update(int index, Tensor param, Tensor grad, ParamGroup group, long step)
    {
        var sq = State(index, SquareAvg, 0);
        var buf = Momentum > 0 ? State(index, MomentumBuffer, 0) : null;
        var gavg = Centered ? State(index, GradAvg, 0) : null;
        var h = new RmsPropHyper(group.Lr, Alpha, Eps, group.WeightDecay, Momentum, Centered, Maximize);
        param.Backend.RmsPropStep(param.V, grad.V, sq.V, buf is null ? default : buf.V, gavg is null ? default : gavg.V, h);
    }

    protected override void SaveHyperparameters(JsonObject h)
    {
        h["alpha"] = Alpha;
        h["eps"] = Eps;
        h["momentum"] = Momentum;
        h["centered"] = Centered;
        h["maximize"] = Maximize;
    }

    protected override void LoadHyperparameters(JsonObject h)
    {
        double alpha = Get(h, "alpha", Alpha), eps = Get(h, "eps", Eps), momentum = Get(h, "momentum", Momentum);
        Validate(alpha, eps, momentum);
        (Alpha, Eps, Momentum, Centered, Maximize) = (alpha, eps, momentum, Get(h, "centered", Centered), Get(h, "maximize", Maximize));
    }
}
