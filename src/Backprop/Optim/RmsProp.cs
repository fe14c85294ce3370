using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace Backprop.Optim;

/// <summary>RMSprop (Hinton) with optional momentum, centering and L2 weight decay: exactly torch.optim.RMSprop.</summary>
/// <remarks>
/// g ← ±∇ + wd·p; s ← α·s + (1 − α)·g²; centered: ḡ ← α·ḡ + (1 − α)·g and d ← √(s − ḡ²) + ε,
/// else d ← √s + ε; with momentum μ: b ← μ·b + g/d and p ← p − lr·b, else p ← p − lr·g/d.
/// </remarks>
public sealed class RmsProp : Optimizer
{
    private const int SquareAvg = 0, MomentumBuffer = 1, GradAvg = 2;

    private readonly FusedRunner<float, RmsPropKernel<float>> _f32 = new();
    private readonly FusedRunner<double, RmsPropKernel<double>> _f64 = new();

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
    public double Momentum { get; private set; }

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
        if (param.DType == DType.Float32)
        {
            _f32.Kernel = new RmsPropKernel<float>(param, grad, sq, buf, gavg, group.Lr, group.WeightDecay, Alpha, Eps, Momentum, Maximize);
            _f32.Execute(param.NumElements);
        }
        else
        {
            _f64.Kernel = new RmsPropKernel<double>(param, grad, sq, buf, gavg, group.Lr, group.WeightDecay, Alpha, Eps, Momentum, Maximize);
            _f64.Execute(param.NumElements);
        }
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

/// <summary>The fused RMSprop update.</summary>
internal readonly struct RmsPropKernel<T> : IFusedKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Tensor _p, _g, _sq;
    private readonly Tensor? _buf, _gavg;
    private readonly T _negLr, _wd, _alpha, _oneMinusAlpha, _eps, _momentum;
    private readonly bool _hasWd, _maximize;

    public RmsPropKernel(Tensor p, Tensor g, Tensor sq, Tensor? buf, Tensor? gavg, double lr, double wd,
        double alpha, double eps, double momentum, bool maximize)
    {
        _p = p; _g = g; _sq = sq; _buf = buf; _gavg = gavg;
        _negLr = T.CreateTruncating(-lr);
        _wd = T.CreateTruncating(wd);
        _alpha = T.CreateTruncating(alpha);
        _oneMinusAlpha = T.CreateTruncating(1 - alpha);
        _eps = T.CreateTruncating(eps);
        _momentum = T.CreateTruncating(momentum);
        _hasWd = wd != 0;
        _maximize = maximize;
    }

    public int Loop<V>(int i, int end) where V : struct, ILanes<V, T>
    {
        ref T p = ref MemoryMarshal.GetReference(_p.Span<T>());
        ref T g = ref MemoryMarshal.GetReference(_g.Span<T>());
        ref T sq = ref MemoryMarshal.GetReference(_sq.Span<T>());
        ref T b = ref _buf == null ? ref Unsafe.NullRef<T>() : ref MemoryMarshal.GetReference(_buf.Span<T>());
        ref T ga = ref _gavg == null ? ref Unsafe.NullRef<T>() : ref MemoryMarshal.GetReference(_gavg.Span<T>());
        bool momentum = _buf != null, centered = _gavg != null;
        V negLr = V.Splat(_negLr), wd = V.Splat(_wd), alpha = V.Splat(_alpha), oma = V.Splat(_oneMinusAlpha);
        V eps = V.Splat(_eps), mu = V.Splat(_momentum);
        for (; i <= end - V.Count; i += V.Count)
        {
            V pv = V.Load(ref p, i);
            V gv = V.Load(ref g, i);
            if (_maximize) gv = -gv;
            if (_hasWd) gv = gv + wd * pv;
            V sv = V.Load(ref sq, i) * alpha + oma * gv * gv;
            V.Store(sv, ref sq, i);
            V avg;
            if (centered)
            {
                V gav = V.Load(ref ga, i) * alpha + oma * gv;
                V.Store(gav, ref ga, i);
                avg = V.Sqrt(sv - gav * gav) + eps;
            }
            else avg = V.Sqrt(sv) + eps;
            if (momentum)
            {
                V bv = V.Load(ref b, i) * mu + gv / avg;
                V.Store(bv, ref b, i);
                V.Store(pv + negLr * bv, ref p, i);
            }
            else V.Store(pv + negLr * (gv / avg), ref p, i);
        }
        return i;
    }
}
