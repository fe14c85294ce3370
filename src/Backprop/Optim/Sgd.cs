using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace Backprop.Optim;

/// <summary>
/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2 weight
/// decay: exactly torch.optim.SGD.
/// </summary>
/// <remarks>
/// g ← ±∇ + wd·p; with momentum μ: b ← g on the first step, else b ← μ·b + (1 − dampening)·g, and
/// g ← g + μ·b (Nesterov) or g ← b; then p ← p − lr·g.
/// </remarks>
public sealed class Sgd : Optimizer
{
    private const int MomentumBuffer = 0;

    private readonly FusedRunner<float, SgdKernel<float>> _f32 = new();
    private readonly FusedRunner<double, SgdKernel<double>> _f64 = new();

    /// <summary>SGD over <paramref name="parameters"/>.</summary>
    public Sgd(IEnumerable<Tensor> parameters, double lr, double momentum = 0, double dampening = 0,
        double weightDecay = 0, bool nesterov = false, bool maximize = false)
        : this(OneGroup(parameters), lr, momentum, dampening, weightDecay, nesterov, maximize) { }

    /// <summary>SGD over parameter groups; a group's own Lr and WeightDecay override the defaults given here.</summary>
    public Sgd(IEnumerable<ParamGroup> groups, double lr, double momentum = 0, double dampening = 0,
        double weightDecay = 0, bool nesterov = false, bool maximize = false)
        : base(groups, lr, weightDecay, ["momentum_buffer"])
    {
        Validate(momentum, dampening, nesterov);
        Momentum = momentum;
        Dampening = dampening;
        Nesterov = nesterov;
        Maximize = maximize;
    }

    /// <summary>Momentum factor μ (0: plain SGD).</summary>
    public double Momentum { get; private set; }

    /// <summary>Dampening of the gradient's share in the momentum buffer.</summary>
    public double Dampening { get; private set; }

    /// <summary>Whether Nesterov momentum is used.</summary>
    public bool Nesterov { get; private set; }

    /// <summary>Whether the objective is maximized instead of minimized.</summary>
    public bool Maximize { get; private set; }

    private void Validate(double momentum, double dampening, bool nesterov)
    {
        CheckNonNegative(momentum, nameof(momentum), "momentum");
        if (!double.IsFinite(dampening))
            throw new ArgumentOutOfRangeException(nameof(dampening), dampening, $"{Name}: invalid dampening {dampening}; it must be finite.");
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new ArgumentException(
                $"{Name}: Nesterov momentum requires a momentum > 0 and zero dampening (got momentum {momentum}, dampening {dampening}).", nameof(nesterov));
    }

    protected override void Update(int index, Tensor param, Tensor grad, ParamGroup group, long step)
    {
        Tensor? buffer = null;
        bool init = false;
        if (Momentum != 0)
        {
            buffer = State(index, MomentumBuffer);
            if (buffer == null)
            {
                // PyTorch starts the buffer at the first gradient (b = g), not at zero.
                buffer = State(index, MomentumBuffer, 0);
                init = true;
            }
        }
        if (param.DType == DType.Float32)
        {
            _f32.Kernel = new SgdKernel<float>(param, grad, buffer, init, group.Lr, group.WeightDecay, Momentum, Dampening, Nesterov, Maximize);
            _f32.Execute(param.NumElements);
        }
        else
        {
            _f64.Kernel = new SgdKernel<double>(param, grad, buffer, init, group.Lr, group.WeightDecay, Momentum, Dampening, Nesterov, Maximize);
            _f64.Execute(param.NumElements);
        }
    }

    protected override void SaveHyperparameters(JsonObject h)
    {
        h["momentum"] = Momentum;
        h["dampening"] = Dampening;
        h["nesterov"] = Nesterov;
        h["maximize"] = Maximize;
    }

    protected override void LoadHyperparameters(JsonObject h)
    {
        double momentum = Get(h, "momentum", Momentum), dampening = Get(h, "dampening", Dampening);
        bool nesterov = Get(h, "nesterov", Nesterov), maximize = Get(h, "maximize", Maximize);
        Validate(momentum, dampening, nesterov);
        (Momentum, Dampening, Nesterov, Maximize) = (momentum, dampening, nesterov, maximize);
    }
}

/// <summary>The fused SGD update; the flags are loop-invariant, so their branches predict perfectly.</summary>
internal readonly struct SgdKernel<T> : IFusedKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Tensor _p, _g;
    private readonly Tensor? _b;
    private readonly T _negLr, _wd, _momentum, _oneMinusDampening;
    private readonly bool _init, _nesterov, _maximize, _hasWd;

    public SgdKernel(Tensor p, Tensor g, Tensor? buffer, bool init, double lr, double wd, double momentum,
        double dampening, bool nesterov, bool maximize)
    {
        _p = p; _g = g; _b = buffer; _init = init;
        _negLr = T.CreateTruncating(-lr);
        _wd = T.CreateTruncating(wd);
        _hasWd = wd != 0;
        _momentum = T.CreateTruncating(momentum);
        _oneMinusDampening = T.CreateTruncating(1 - dampening);
        _nesterov = nesterov;
        _maximize = maximize;
    }

    public int Loop<V>(int i, int end) where V : struct, ILanes<V, T>
    {
        ref T p = ref MemoryMarshal.GetReference(_p.Span<T>());
        ref T g = ref MemoryMarshal.GetReference(_g.Span<T>());
        ref T b = ref _b == null ? ref Unsafe.NullRef<T>() : ref MemoryMarshal.GetReference(_b.Span<T>());
        bool momentum = _b != null;
        V negLr = V.Splat(_negLr), wd = V.Splat(_wd), mu = V.Splat(_momentum), omd = V.Splat(_oneMinusDampening);
        for (; i <= end - V.Count; i += V.Count)
        {
            V pv = V.Load(ref p, i);
            V d = V.Load(ref g, i);
            if (_maximize) d = -d;
            if (_hasWd) d = d + wd * pv;
            if (momentum)
            {
                V buf = _init ? d : V.Load(ref b, i) * mu + omd * d;
                V.Store(buf, ref b, i);
                d = _nesterov ? d + mu * buf : buf;
            }
            V.Store(pv + negLr * d, ref p, i);
        }
        return i;
    }
}
