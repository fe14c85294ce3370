using System.Text.Json.Nodes;
using Backprop.Backends;

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
    public double Momentum { get; internal set; }

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
        var h = new SgdHyper(group.Lr, group.WeightDecay, Momentum, Dampening, Nesterov, Maximize, init);
        param.Backend.SgdStep(param.V, grad.V, buffer is null ? default : buffer.V, h);
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
