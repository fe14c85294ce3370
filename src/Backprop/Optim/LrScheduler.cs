using System.Text.Json.Nodes;

namespace Backprop.Optim;

/// <summary>
/// Base of the learning-rate schedules: each <see cref="Step"/> advances one epoch (or one batch,
/// as the training loop chooses) and sets every group's learning rate from its closed form.
/// </summary>
/// <remarks>
/// Like PyTorch, a schedule is applied when it is created (epoch 0), so the optimizer's first step
/// already uses the scheduled rate. Every schedule of an optimizer computes from each group's
/// <see cref="ParamGroup.InitialLr"/>, recorded by the first schedule attached, so schedules that
/// are created one after another (for <see cref="SequentialLr"/>) agree on the base rates.
/// </remarks>
public abstract class LrScheduler
{
    private readonly double[] _baseLrs;
    private readonly double[] _lastLrs;

    /// <summary>Attaches to <paramref name="optimizer"/>; the derived constructor must end with <see cref="Initialize"/>.</summary>
    protected LrScheduler(Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        Optimizer = optimizer;
        var groups = optimizer.ParamGroups;
        _baseLrs = new double[groups.Count];
        _lastLrs = new double[groups.Count];
        for (int i = 0; i < groups.Count; i++)
        {
            groups[i].InitialLr ??= groups[i].Lr;
            _baseLrs[i] = groups[i].InitialLr!.Value;
        }
    }

    /// <summary>The optimizer whose learning rates this schedule sets.</summary>
    public Optimizer Optimizer { get; }

    /// <summary>Number of <see cref="Step"/> calls so far (PyTorch's last_epoch); 0 right after construction.</summary>
    public int LastEpoch { get; private set; }

    /// <summary>Each group's learning rate at epoch 0.</summary>
    public IReadOnlyList<double> BaseLrs => _baseLrs;

    /// <summary>Each group's learning rate as last set by this schedule.</summary>
    public IReadOnlyList<double> LastLrs => _lastLrs;

    /// <summary>The first group's learning rate as last set by this schedule.</summary>
    public double LastLr => _lastLrs[0];

    /// <summary>The learning rate this schedule gives at <paramref name="epoch"/> to a group whose base rate is <paramref name="baseLr"/>.</summary>
    public abstract double LrAt(int epoch, double baseLr);

    /// <summary>Applies epoch 0; call it at the end of a derived constructor, once the schedule's settings are stored.</summary>
    protected void Initialize() => SetEpoch(0);

    /// <summary>Advances one epoch and sets each group's learning rate.</summary>
    public void Step()
    {
        if (LastEpoch == int.MaxValue) throw new InvalidOperationException($"{GetType().Name}.Step: the epoch counter is exhausted.");
        SetEpoch(LastEpoch + 1);
    }

    /// <summary>Moves to <paramref name="epoch"/> and sets each group's learning rate.</summary>
    internal void SetEpoch(int epoch)
    {
        LastEpoch = epoch;
        Apply();
    }

    private protected virtual void Apply()
    {
        var groups = Optimizer.ParamGroups;
        for (int i = 0; i < _baseLrs.Length; i++)
        {
            double lr = LrAt(LastEpoch, _baseLrs[i]);
            groups[i].Lr = lr;
            _lastLrs[i] = lr;
        }
    }

    /// <summary>Copies <paramref name="lrs"/> into <see cref="LastLrs"/> (for schedules that delegate).</summary>
    private protected void SetLastLrs(IReadOnlyList<double> lrs)
    {
        for (int i = 0; i < _lastLrs.Length; i++) _lastLrs[i] = lrs[i];
    }

    /// <summary>The schedule's position: type, last epoch, base and last learning rates (in Meta; no tensors).</summary>
    public virtual StateDict StateDict()
    {
        var sd = new StateDict();
        sd.Meta["type"] = GetType().Name;
        sd.Meta["last_epoch"] = LastEpoch;
        sd.Meta["base_lrs"] = new JsonArray([.. _baseLrs.Select(v => (JsonNode)v)]);
        sd.Meta["last_lrs"] = new JsonArray([.. _lastLrs.Select(v => (JsonNode)v)]);
        return sd;
    }

    /// <summary>
    /// Restores the position saved by <see cref="StateDict"/>. Like PyTorch it does not touch the
    /// optimizer's learning rates: load the optimizer's own state dict for those.
    /// </summary>
    public virtual void LoadStateDict(StateDict dict)
    {
        ArgumentNullException.ThrowIfNull(dict);
        string name = GetType().Name;
        string? type = MetaValues.Text(dict.Meta["type"], "type");
        if (type != name)
            throw new ArgumentException($"{name}.LoadStateDict: the dict holds the state of {type ?? "an unknown schedule"}, not {name}.", nameof(dict));
        var baseLrs = Doubles(dict.Meta["base_lrs"]);
        var lastLrs = Doubles(dict.Meta["last_lrs"]);
        if (baseLrs.Length != _baseLrs.Length || lastLrs.Length != _lastLrs.Length)
            throw new ArgumentException($"{name}.LoadStateDict: the dict has learning rates for {baseLrs.Length} group(s), the optimizer has {_baseLrs.Length}.", nameof(dict));
        int epoch = (int)(MetaValues.Integer(dict.Meta["last_epoch"], "last_epoch", 0, Data.DataLoader.MaxEpoch)
            ?? throw new ArgumentException($"{name}.LoadStateDict: no 'last_epoch' in Meta.", nameof(dict)));
        LastEpoch = epoch;
        baseLrs.CopyTo(_baseLrs, 0);
        lastLrs.CopyTo(_lastLrs, 0);
    }

    private static double[] Doubles(JsonNode? n) => n is JsonArray a ? [.. a.Select((v, i) => MetaValues.Number(v, $"learning rate {i}") ?? double.NaN)] : [];

    private protected static void CheckFactor(double value, string param, string who, double min, double max, bool minInclusive)
    {
        bool ok = (minInclusive ? value >= min : value > min) && value <= max;
        if (!ok)
            throw new ArgumentOutOfRangeException(param, value,
                $"{who}: {param} must be in {(minInclusive ? "[" : "(")}{min}, {max}], got {value}.");
    }
}
