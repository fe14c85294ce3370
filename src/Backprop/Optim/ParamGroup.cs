namespace Backprop.Optim;

/// <summary>
/// A set of parameters with its own learning rate and weight decay, like a PyTorch param group:
/// <c>new Adam([new ParamGroup(backbone), new ParamGroup(head, lr: 1e-2)], lr: 1e-4)</c>.
/// Settings left null take the optimizer's defaults.
/// </summary>
public sealed class ParamGroup
{
    private readonly Tensor[] _parameters;
    private double? _lr;
    private double? _weightDecay;
    internal Optimizer? Owner;

    /// <summary>A group of <paramref name="parameters"/>; a null setting means "use the optimizer's".</summary>
    public ParamGroup(IEnumerable<Tensor> parameters, double? lr = null, double? weightDecay = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        _parameters = parameters.ToArray();
        for (int i = 0; i < _parameters.Length; i++)
            if (_parameters[i] is null) throw new ArgumentException($"ParamGroup: parameter {i} is null.", nameof(parameters));
        if (lr is double l) CheckLr(l, "ParamGroup");
        if (weightDecay is double w) CheckWeightDecay(w, "ParamGroup");
        _lr = lr;
        _weightDecay = weightDecay;
    }

    /// <summary>The parameters of this group, in the order given.</summary>
    public IReadOnlyList<Tensor> Parameters => _parameters;

    internal Tensor[] ParameterArray => _parameters;

    /// <summary>The learning rate of this group; schedulers change it every step.</summary>
    public double Lr
    {
        get => _lr ?? throw Unresolved("Lr");
        set
        {
            CheckLr(value, "ParamGroup.Lr");
            _lr = value;
        }
    }

    /// <summary>The weight decay of this group (L2 penalty, or decoupled decay for AdamW).</summary>
    public double WeightDecay
    {
        get => _weightDecay ?? throw Unresolved("WeightDecay");
        set
        {
            CheckWeightDecay(value, "ParamGroup.WeightDecay");
            _weightDecay = value;
        }
    }

    /// <summary>
    /// The learning rate when the first scheduler was attached (PyTorch's "initial_lr"); every
    /// scheduler of the optimizer computes its schedule from it, so chained schedulers agree.
    /// </summary>
    public double? InitialLr { get; internal set; }

    /// <summary>Fills unset settings with the optimizer's defaults and claims the group for it.</summary>
    internal void Attach(Optimizer owner, double lr, double weightDecay)
    {
        if (Owner != null && !ReferenceEquals(Owner, owner))
            throw new ArgumentException($"{owner.Name}: this ParamGroup already belongs to a {Owner.Name}; create a new ParamGroup for each optimizer.");
        Owner = owner;
        _lr ??= lr;
        _weightDecay ??= weightDecay;
    }

    private InvalidOperationException Unresolved(string what) => new(
        $"ParamGroup.{what}: not set on this group yet; it takes the optimizer's default when the group is passed to an optimizer.");

    internal static void CheckLr(double lr, string who)
    {
        if (!(lr >= 0) || double.IsInfinity(lr))
            throw new ArgumentOutOfRangeException("lr", lr, $"{who}: invalid learning rate {lr}; it must be a finite number >= 0.");
    }

    internal static void CheckWeightDecay(double wd, string who)
    {
        if (!(wd >= 0) || double.IsInfinity(wd))
            throw new ArgumentOutOfRangeException("weightDecay", wd, $"{who}: invalid weight decay {wd}; it must be a finite number >= 0.");
    }
}
