using System.Text.Json.Nodes;

namespace Backprop.Optim;

/// <summary>Whether <see cref="ReduceLrOnPlateau"/> watches a metric that should fall (a loss) or rise (an accuracy).</summary>
public enum PlateauMode
{
    /// <summary>Lower is better.</summary>
    Min,
    /// <summary>Higher is better.</summary>
    Max,
}

/// <summary>How <see cref="ReduceLrOnPlateau"/> decides that a metric improved.</summary>
public enum ThresholdMode
{
    /// <summary>Relative: better than best·(1 ∓ threshold).</summary>
    Rel,
    /// <summary>Absolute: better than best ∓ threshold.</summary>
    Abs,
}

/// <summary>
/// Multiplies every group's learning rate by <see cref="Factor"/> when a metric has not improved for
/// more than <see cref="Patience"/> epochs: torch.optim.lr_scheduler.ReduceLROnPlateau.
/// Call <see cref="Step(double)"/> once per epoch with the validation metric.
/// </summary>
/// <remarks>
/// After a reduction, <see cref="Cooldown"/> epochs pass during which bad epochs are not counted. A rate
/// never goes below its group's minimum, and a reduction smaller than <see cref="Eps"/> is skipped. The
/// rate has no closed form (it depends on the metrics), so <see cref="LrAt"/> throws and the schedule
/// cannot be chained in <see cref="SequentialLr"/>; the plain <see cref="LrScheduler.Step"/> only counts an
/// epoch. The state dict holds the best metric and the counters along with the position.
/// </remarks>
public sealed class ReduceLrOnPlateau : LrScheduler
{
    private readonly double[] _minLrs;

    /// <summary>A plateau schedule on <paramref name="optimizer"/> (PyTorch's defaults) with one minimum rate for all groups.</summary>
    public ReduceLrOnPlateau(Optimizer optimizer, PlateauMode mode = PlateauMode.Min, double factor = 0.1, int patience = 10, double threshold = 1e-4,
        ThresholdMode thresholdMode = ThresholdMode.Rel, int cooldown = 0, double minLr = 0, double eps = 1e-8)
        : this(optimizer, mode, factor, patience, threshold, thresholdMode, cooldown, [.. optimizer.ParamGroups.Select(_ => minLr)], eps)
    {
    }

    /// <summary>A plateau schedule on <paramref name="optimizer"/> with a minimum rate per group.</summary>
    public ReduceLrOnPlateau(Optimizer optimizer, PlateauMode mode, double factor, int patience, double threshold,
        ThresholdMode thresholdMode, int cooldown, IReadOnlyList<double> minLrs, double eps = 1e-8) : base(optimizer)
    {
        ArgumentNullException.ThrowIfNull(minLrs);
        if (!(factor >= 0 && factor < 1)) throw new ArgumentOutOfRangeException(nameof(factor), factor, $"ReduceLrOnPlateau: factor must be in [0, 1), got {factor}.");
        if (patience < 0) throw new ArgumentOutOfRangeException(nameof(patience), patience, $"ReduceLrOnPlateau: patience must be >= 0, got {patience}.");
        if (cooldown < 0) throw new ArgumentOutOfRangeException(nameof(cooldown), cooldown, $"ReduceLrOnPlateau: cooldown must be >= 0, got {cooldown}.");
        if (!(threshold >= 0) || double.IsInfinity(threshold))
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, $"ReduceLrOnPlateau: threshold must be a finite number >= 0, got {threshold}.");
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, $"ReduceLrOnPlateau: eps must be >= 0, got {eps}.");
        if (minLrs.Count != optimizer.ParamGroups.Count)
            throw new ArgumentException($"ReduceLrOnPlateau: {minLrs.Count} minimum rate(s) for {optimizer.ParamGroups.Count} parameter group(s).", nameof(minLrs));
        if (minLrs.Any(m => !(m >= 0) || double.IsInfinity(m)))
            throw new ArgumentOutOfRangeException(nameof(minLrs), $"ReduceLrOnPlateau: minimum rates must be finite numbers >= 0, got [{string.Join(", ", minLrs)}].");
        Mode = mode;
        Factor = factor;
        Patience = patience;
        Threshold = threshold;
        ThresholdMode = thresholdMode;
        Cooldown = cooldown;
        Eps = eps;
        _minLrs = [.. minLrs];
        Best = mode == PlateauMode.Min ? double.PositiveInfinity : double.NegativeInfinity;
        Initialize();
    }

    /// <summary>Whether the metric should fall or rise.</summary>
    public PlateauMode Mode { get; }

    /// <summary>New rate = old rate · Factor.</summary>
    public double Factor { get; }

    /// <summary>Epochs without improvement tolerated before a reduction.</summary>
    public int Patience { get; }

    /// <summary>How much better than the best a metric must be to count as an improvement.</summary>
    public double Threshold { get; }

    /// <summary>Whether <see cref="Threshold"/> is relative or absolute.</summary>
    public ThresholdMode ThresholdMode { get; }

    /// <summary>Epochs after a reduction during which bad epochs are not counted.</summary>
    public int Cooldown { get; }

    /// <summary>Each group's lowest rate.</summary>
    public IReadOnlyList<double> MinLrs => _minLrs;

    /// <summary>Reductions smaller than this are skipped.</summary>
    public double Eps { get; }

    /// <summary>The best metric seen (±∞ before the first).</summary>
    public double Best { get; private set; }

    /// <summary>Consecutive epochs without improvement (outside cooldown).</summary>
    public int NumBadEpochs { get; private set; }

    /// <summary>Epochs of cooldown left.</summary>
    public int CooldownCounter { get; private set; }

    /// <summary>Records one epoch's <paramref name="metric"/> and reduces the rates when it has stopped improving.</summary>
    public void Step(double metric)
    {
        if (IsBetter(metric, Best))
        {
            Best = metric;
            NumBadEpochs = 0;
        }
        else NumBadEpochs++;
        if (CooldownCounter > 0)
        {
            CooldownCounter--;
            NumBadEpochs = 0;
        }
        if (NumBadEpochs > Patience)
        {
            var groups = Optimizer.ParamGroups;
            for (int i = 0; i < groups.Count; i++)
            {
                double old = groups[i].Lr, lr = Math.Max(old * Factor, _minLrs[i]);
                if (old - lr > Eps) groups[i].Lr = lr;
            }
            CooldownCounter = Cooldown;
            NumBadEpochs = 0;
        }
        Step();
    }

    private bool IsBetter(double a, double best) => (Mode, ThresholdMode) switch
    {
        (PlateauMode.Min, ThresholdMode.Rel) => a < best * (1 - Threshold),
        (PlateauMode.Min, ThresholdMode.Abs) => a < best - Threshold,
        (PlateauMode.Max, ThresholdMode.Rel) => a > best * (1 + Threshold),
        _ => a > best + Threshold,
    };

    /// <summary>Not available: the rate depends on the metrics, not on the epoch alone.</summary>
    public override double LrAt(int epoch, double baseLr) =>
        throw new NotSupportedException("ReduceLrOnPlateau: the learning rate depends on the metrics passed to Step(metric), not on the epoch alone.");

    private protected override void Apply() => SetLastLrs([.. Optimizer.ParamGroups.Select(g => g.Lr)]);

    /// <inheritdoc/>
    public override StateDict StateDict()
    {
        var sd = base.StateDict();
        // ±∞ (no metric yet) is not JSON: it is saved as null
        sd.Meta["best"] = double.IsInfinity(Best) ? null : Best;
        sd.Meta["num_bad_epochs"] = NumBadEpochs;
        sd.Meta["cooldown_counter"] = CooldownCounter;
        return sd;
    }

    /// <inheritdoc/>
    public override void LoadStateDict(StateDict dict)
    {
        ArgumentNullException.ThrowIfNull(dict);
        if (!dict.Meta.ContainsKey("best") || !dict.Meta.ContainsKey("num_bad_epochs") || !dict.Meta.ContainsKey("cooldown_counter"))
            throw new ArgumentException("ReduceLrOnPlateau.LoadStateDict: the dict lacks 'best', 'num_bad_epochs' or 'cooldown_counter'.", nameof(dict));
        base.LoadStateDict(dict);
        Best = MetaValues.Number(dict.Meta["best"], "best") ?? (Mode == PlateauMode.Min ? double.PositiveInfinity : double.NegativeInfinity);
        NumBadEpochs = (int)(MetaValues.Integer(dict.Meta["num_bad_epochs"], "num_bad_epochs", 0, int.MaxValue) ?? 0);
        CooldownCounter = (int)(MetaValues.Integer(dict.Meta["cooldown_counter"], "cooldown_counter", 0, int.MaxValue) ?? 0);
    }
}
