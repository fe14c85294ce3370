using System.Text.Json.Nodes;
using Backprop.Backends;

namespace Backprop.Optim;

/// <summary>AdaGrad (Duchi et al.) with learning-rate decay and L2 weight decay: exactly torch.optim.Adagrad.</summary>
/// <remarks>
/// g ← ±∇ + wd·p; clr ← lr / (1 + (t − 1)·lrDecay); s ← s + g²; p ← p − clr · g / (√s + ε),
/// with s starting at <see cref="InitialAccumulatorValue"/>.
/// </remarks>
public sealed class AdaGrad : Optimizer
{
    private const int Sum = 0;

    /// <summary>AdaGrad over <paramref name="parameters"/>.</summary>
    public AdaGrad(IEnumerable<Tensor> parameters, double lr = 1e-2, double lrDecay = 0, double weightDecay = 0,
        double initialAccumulatorValue = 0, double eps = 1e-10, bool maximize = false)
        : this(OneGroup(parameters), lr, lrDecay, weightDecay, initialAccumulatorValue, eps, maximize) { }

    /// <summary>AdaGrad over parameter groups; a group's own Lr and WeightDecay override the defaults given here.</summary>
    public AdaGrad(IEnumerable<ParamGroup> groups, double lr = 1e-2, double lrDecay = 0, double weightDecay = 0,
        double initialAccumulatorValue = 0, double eps = 1e-10, bool maximize = false)
        : base(groups, lr, weightDecay, ["sum"])
    {
        Validate(lrDecay, initialAccumulatorValue, eps);
        (LrDecay, InitialAccumulatorValue, Eps, Maximize) = (lrDecay, initialAccumulatorValue, eps, maximize);
    }

    /// <summary>The learning rate at step t is lr / (1 + (t − 1)·LrDecay).</summary>
    public double LrDecay { get; private set; }

    /// <summary>Starting value of the sum of squared gradients.</summary>
    public double InitialAccumulatorValue { get; private set; }

    /// <summary>Added to the denominator for numerical stability.</summary>
    public double Eps { get; private set; }

    /// <summary>Whether the objective is maximized instead of minimized.</summary>
    public bool Maximize { get; private set; }

    private void Validate(double lrDecay, double initial, double eps)
    {
        CheckNonNegative(lrDecay, "lrDecay", "lr decay");
        CheckNonNegative(initial, "initialAccumulatorValue", "initial accumulator value");
        CheckNonNegative(eps, "eps", "eps");
    }

    protected override void Update(int index, Tensor param, Tensor grad, ParamGroup group, long step)
    {
        var sum = State(index, Sum, InitialAccumulatorValue);
        param.Backend.AdaGradStep(param.V, grad.V, sum.V, new AdaGradHyper(group.Lr, LrDecay, group.WeightDecay, Eps, Maximize, step));
    }

    protected override void SaveHyperparameters(JsonObject h)
    {
        h["lr_decay"] = LrDecay;
        h["initial_accumulator_value"] = InitialAccumulatorValue;
        h["eps"] = Eps;
        h["maximize"] = Maximize;
    }

    protected override void LoadHyperparameters(JsonObject h)
    {
        double lrDecay = Get(h, "lr_decay", LrDecay), initial = Get(h, "initial_accumulator_value", InitialAccumulatorValue), eps = Get(h, "eps", Eps);
        Validate(lrDecay, initial, eps);
        (LrDecay, InitialAccumulatorValue, Eps, Maximize) = (lrDecay, initial, eps, Get(h, "maximize", Maximize));
    }
}
