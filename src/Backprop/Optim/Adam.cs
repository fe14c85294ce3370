using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

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

/// <summary>What Adam and AdamW share: validation, state layout, the per-parameter scalars and the kernel launch.</summary>
internal sealed class AdamSteps
{
    internal static readonly string[] StateNames = ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
    internal const int ExpAvg = 0, ExpAvgSq = 1, MaxExpAvgSq = 2;

    private readonly Optimizer _owner;
    private readonly bool _decoupled;
    private readonly FusedRunner<float, AdamKernel<float>> _f32 = new();
    private readonly FusedRunner<double, AdamKernel<double>> _f64 = new();

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
        // The bias corrections are computed in double even for float32 parameters, as PyTorch does
        // (Python floats); only the per-element arithmetic runs at the parameter's precision.
        double lr = group.Lr, wd = group.WeightDecay;
        double bc1 = 1 - Math.Pow(beta1, step);
        double bc2 = 1 - Math.Pow(beta2, step);
        var s = new AdamScalars
        {
            Beta1 = beta1,
            Beta2 = beta2,
            NegStepSize = -(lr / bc1),
            InvBc2Sqrt = 1 / Math.Sqrt(bc2),
            Eps = eps,
            L2 = _decoupled ? 0 : wd,
            Decay = _decoupled ? 1 - lr * wd : 1,
            Maximize = maximize,
        };
        if (param.DType == DType.Float32)
        {
            _f32.Kernel = new AdamKernel<float>(param, grad, m, v, vmax, s);
            _f32.Execute(param.NumElements);
        }
        else
        {
            _f64.Kernel = new AdamKernel<double>(param, grad, m, v, vmax, s);
            _f64.Execute(param.NumElements);
        }
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

/// <summary>The per-step scalars of an Adam update, in double until the kernel narrows them.</summary>
internal struct AdamScalars
{
    public double Beta1, Beta2, NegStepSize, InvBc2Sqrt, Eps, L2, Decay;
    public bool Maximize;
}

/// <summary>The fused Adam/AdamW update: p, g, m, v (and v̂) each read once and written once.</summary>
internal readonly struct AdamKernel<T> : IFusedKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Tensor _p, _g, _m, _v;
    private readonly Tensor? _vmax;
    private readonly T _beta1, _oneMinusBeta1, _beta2, _oneMinusBeta2, _negStepSize, _invBc2Sqrt, _eps, _l2, _decay;
    private readonly bool _hasL2, _hasDecay, _maximize;

    public AdamKernel(Tensor p, Tensor g, Tensor m, Tensor v, Tensor? vmax, in AdamScalars s)
    {
        _p = p; _g = g; _m = m; _v = v; _vmax = vmax;
        _beta1 = T.CreateTruncating(s.Beta1);
        _oneMinusBeta1 = T.CreateTruncating(1 - s.Beta1);
        _beta2 = T.CreateTruncating(s.Beta2);
        _oneMinusBeta2 = T.CreateTruncating(1 - s.Beta2);
        _negStepSize = T.CreateTruncating(s.NegStepSize);
        _invBc2Sqrt = T.CreateTruncating(s.InvBc2Sqrt);
        _eps = T.CreateTruncating(s.Eps);
        _l2 = T.CreateTruncating(s.L2);
        _decay = T.CreateTruncating(s.Decay);
        _hasL2 = s.L2 != 0;
        _hasDecay = s.Decay != 1;
        _maximize = s.Maximize;
    }

    public int Loop<V>(int i, int end) where V : struct, ILanes<V, T>
    {
        ref T p = ref MemoryMarshal.GetReference(_p.Span<T>());
        ref T g = ref MemoryMarshal.GetReference(_g.Span<T>());
        ref T m = ref MemoryMarshal.GetReference(_m.Span<T>());
        ref T v = ref MemoryMarshal.GetReference(_v.Span<T>());
        ref T vmax = ref _vmax == null ? ref Unsafe.NullRef<T>() : ref MemoryMarshal.GetReference(_vmax.Span<T>());
        bool ams = _vmax != null;
        V b1 = V.Splat(_beta1), omb1 = V.Splat(_oneMinusBeta1), b2 = V.Splat(_beta2), omb2 = V.Splat(_oneMinusBeta2);
        V negStep = V.Splat(_negStepSize), invBc2Sqrt = V.Splat(_invBc2Sqrt), eps = V.Splat(_eps);
        V l2 = V.Splat(_l2), decay = V.Splat(_decay);
        for (; i <= end - V.Count; i += V.Count)
        {
            V pv = V.Load(ref p, i);
            V gv = V.Load(ref g, i);
            if (_maximize) gv = -gv;
            if (_hasDecay) pv = pv * decay;
            if (_hasL2) gv = gv + l2 * pv;
            V mv = V.Load(ref m, i) * b1 + omb1 * gv;
            V vv = V.Load(ref v, i) * b2 + omb2 * gv * gv;
            V.Store(mv, ref m, i);
            V.Store(vv, ref v, i);
            if (ams)
            {
                vv = V.Max(V.Load(ref vmax, i), vv);
                V.Store(vv, ref vmax, i);
            }
            V denom = V.Sqrt(vv) * invBc2Sqrt + eps;
            V.Store(pv + negStep * (mv / denom), ref p, i);
        }
        return i;
    }
}
