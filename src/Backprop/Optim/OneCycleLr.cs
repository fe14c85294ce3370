namespace Backprop.Optim;

/// <summary>How <see cref="OneCycleLr"/> moves between two rates.</summary>
public enum AnnealStrategy
{
    /// <summary>Half a cosine: end + (start − end)·(1 + cos(π·pct))/2.</summary>
    Cos,
    /// <summary>A straight line: start + (end − start)·pct.</summary>
    Linear,
}

/// <summary>
/// The one-cycle policy (Smith and Topin): torch.optim.lr_scheduler.OneCycleLR with cycle_momentum=False.
/// The rate rises from maxLr/divFactor to <see cref="MaxLr"/> over the first pctStart of
/// <see cref="TotalSteps"/> steps, then anneals to maxLr/(divFactor·finalDivFactor). With
/// <see cref="ThreePhase"/> it first returns to the initial rate (symmetrically) and only then anneals to the minimum.
/// </summary>
/// <remarks>
/// Step it once per batch; the rate of step e is defined for 0 ≤ e ≤ totalSteps (more steps throw, as in
/// PyTorch). The base rate of the optimizer is not used: every group follows the same cycle. Momentum is
/// not cycled. The state dict holds the position; the settings come from the constructor.
/// </remarks>
public sealed class OneCycleLr : LrScheduler
{
    private readonly (double EndStep, double StartLr, double EndLr)[] _phases;

    /// <summary>A one-cycle schedule on <paramref name="optimizer"/> (PyTorch's defaults).</summary>
    public OneCycleLr(Optimizer optimizer, double maxLr, int totalSteps, double pctStart = 0.3, AnnealStrategy annealStrategy = AnnealStrategy.Cos,
        double divFactor = 25, double finalDivFactor = 1e4, bool threePhase = false) : base(optimizer)
    {
        if (!(maxLr > 0) || double.IsInfinity(maxLr)) throw new ArgumentOutOfRangeException(nameof(maxLr), maxLr, $"OneCycleLr: maxLr must be a finite number > 0, got {maxLr}.");
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, $"OneCycleLr: totalSteps must be at least 1, got {totalSteps}.");
        CheckFactor(pctStart, nameof(pctStart), "OneCycleLr", 0, 1, minInclusive: true);
        if (!(divFactor > 0) || double.IsInfinity(divFactor)) throw new ArgumentOutOfRangeException(nameof(divFactor), divFactor, $"OneCycleLr: divFactor must be a finite number > 0, got {divFactor}.");
        if (!(finalDivFactor > 0) || double.IsInfinity(finalDivFactor))
            throw new ArgumentOutOfRangeException(nameof(finalDivFactor), finalDivFactor, $"OneCycleLr: finalDivFactor must be a finite number > 0, got {finalDivFactor}.");
        MaxLr = maxLr;
        TotalSteps = totalSteps;
        PctStart = pctStart;
        AnnealStrategy = annealStrategy;
        DivFactor = divFactor;
        FinalDivFactor = finalDivFactor;
        ThreePhase = threePhase;
        double initial = InitialLr, min = MinLr, up = pctStart * totalSteps - 1;
        _phases = threePhase
            ? [(up, initial, maxLr), (2 * pctStart * totalSteps - 2, maxLr, initial), (totalSteps - 1, initial, min)]
            : [(up, initial, maxLr), (totalSteps - 1, maxLr, min)];
        Initialize();
    }

    /// <summary>The peak rate.</summary>
    public double MaxLr { get; }

    /// <summary>Steps in the cycle.</summary>
    public int TotalSteps { get; }

    /// <summary>Fraction of the cycle spent rising.</summary>
    public double PctStart { get; }

    /// <summary>Cosine or linear annealing.</summary>
    public AnnealStrategy AnnealStrategy { get; }

    /// <summary>The starting rate is MaxLr / DivFactor.</summary>
    public double DivFactor { get; }

    /// <summary>The final rate is the starting rate / FinalDivFactor.</summary>
    public double FinalDivFactor { get; }

    /// <summary>True: up, back down to the starting rate, then to the minimum; false: up, then down to the minimum.</summary>
    public bool ThreePhase { get; }

    /// <summary>The rate at step 0: MaxLr / DivFactor.</summary>
    public double InitialLr => MaxLr / DivFactor;

    /// <summary>The rate at the last step: InitialLr / FinalDivFactor.</summary>
    public double MinLr => InitialLr / FinalDivFactor;

    /// <inheritdoc/>
    public override double LrAt(int epoch, double baseLr)
    {
        if (epoch > TotalSteps)
            throw new InvalidOperationException($"OneCycleLr: stepped {epoch} times, past the {TotalSteps} total steps of the cycle.");
        double start = 0;
        for (int i = 0; i < _phases.Length; i++)
        {
            var (end, from, to) = _phases[i];
            if (epoch <= end || i == _phases.Length - 1)
            {
                double pct = (epoch - start) / (end - start);
                return AnnealStrategy == AnnealStrategy.Cos
                    ? to + (from - to) / 2.0 * (Math.Cos(Math.PI * pct) + 1)
                    : (to - from) * pct + from;
            }
            start = end;
        }
        throw new InvalidOperationException("OneCycleLr: no phase.");
    }
}
