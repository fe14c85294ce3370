using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace Backprop.Optim;

/// <summary>AdaGrad (Duchi et al.) with learning-rate decay and L2 weight decay: exactly torch.optim.Adagrad.</summary>
/// <remarks>
/// g ← ±∇ + wd·p; clr ← lr / (1 + (t − 1)·lrDecay); s ← s + g²; p ← p − clr · g / (√s + ε),
/// with s starting at <see cref="InitialAccumulatorValue"/>.
/// </remarks>
public sealed class AdaGrad : Optimizer
{
    private const int Sum = 0;

    private readonly FusedRunner<float, AdaGradKernel<float>> _f32 = new();
    private readonly FusedRunner<double, AdaGradKernel<double>> _f64 = new();

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
        double clr = group.Lr / (1 + (step - 1) * LrDecay);
        if (param.DType == DType.Float32)
        {
            _f32.Kernel = new AdaGradKernel<float>(param, grad, sum, clr, group.WeightDecay, Eps, Maximize);
            _f32.Execute(param.NumElements);
        }
        else
        {
            _f64.Kernel = new AdaGradKernel<double>(param, grad, sum, clr, group.WeightDecay, Eps, Maximize);
            _f64.Execute(param.NumElements);
        }
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

/// <summary>The fused AdaGrad update.</summary>
internal readonly struct AdaGradKernel<T> : IFusedKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Tensor _p, _g, _sum;
    private readonly T _negClr, _wd, _eps;
    private readonly bool _hasWd, _maximize;

    public AdaGradKernel(Tensor p, Tensor g, Tensor sum, double clr, double wd, double eps, bool maximize)
    {
        _p = p; _g = g; _sum = sum;
        _negClr = T.CreateTruncating(-clr);
        _wd = T.CreateTruncating(wd);
        _eps = T.CreateTruncating(eps);
        _hasWd = wd != 0;
        _maximize = maximize;
    }

    public int Loop<V>(int i, int end) where V : struct, ILanes<V, T>
    {
        ref T p = ref MemoryMarshal.GetReference(_p.Span<T>());
        ref T g = ref MemoryMarshal.GetReference(_g.Span<T>());
        ref T s = ref MemoryMarshal.GetReference(_sum.Span<T>());
        V negClr = V.Splat(_negClr), wd = V.Splat(_wd), eps = V.Splat(_eps);
        for (; i <= end - V.Count; i += V.Count)
        {
            V pv = V.Load(ref p, i);
            V gv = V.Load(ref g, i);
            if (_maximize) gv = -gv;
            if (_hasWd) gv = gv + wd * pv;
            V sv = V.Load(ref s, i) + gv * gv;
            V.Store(sv, ref s, i);
            V.Store(pv + negClr * (gv / (V.Sqrt(sv) + eps)), ref p, i);
        }
        return i;
    }
}
