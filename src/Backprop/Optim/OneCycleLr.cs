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
/// The one-cycle policy (Smith and Topin): torch.optim.lr_scheduler.OneCycleLR.
/// The rate rises from maxLr/divFactor to <see cref="MaxLr"/> over the first pctStart of
/// <see cref="TotalSteps"/> steps, then anneals to maxLr/(divFactor·finalDivFactor). With
/// <see cref="ThreePhase"/> it first returns to the initial rate (symmetrically) and only then anneals to the minimum.
/// </summary>
/// <remarks>
/// Step it once per batch; the rate of step e is defined for 0 ≤ e ≤ totalSteps (more steps throw, as in
/// PyTorch). The base rate of the optimizer is not used: every group follows the same cycle. With
/// <c>cycleMomentum: true</c> the momentum (SGD's and RMSprop's momentum, Adam's and AdamW's β₁) moves
/// the other way, from maxMomentum down to baseMomentum while the rate rises and back up while it falls,
/// as PyTorch's cycle_momentum=True does (PyTorch's default; here it is opt-in, so that attaching a
/// schedule never turns momentum on in an optimizer built without it). The state dict holds the
/// position; the settings come from the constructor, and the momentum is saved with the optimizer's
/// hyperparameters.
/// </remarks>
public sealed class OneCycleLr : LrScheduler
{
    private readonly (double EndStep, double StartLr, double EndLr)[] _phases;
    private readonly (double Start, double End)[] _momenta = [];
    private readonly Action<double>? _setMomentum;

    /// <summary>A one-cycle schedule on <paramref name="optimizer"/> (PyTorch's defaults).</summary>
    public OneCycleLr(Optimizer optimizer, double maxLr, int totalSteps, double pctStart = 0.3, AnnealStrategy annealStrategy = AnnealStrategy.Cos,
        double divFactor = 25, double finalDivFactor = 1e4, bool threePhase = false,
        bool cycleMomentum = false, double baseMomentum = 0.85, double maxMomentum = 0.95) : base(optimizer)
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
        CycleMomentum = cycleMomentum;
        if (cycleMomentum)
        {
            CheckFactor(baseMomentum, nameof(baseMomentum), "OneCycleLr", 0, 1, minInclusive: true);
            CheckFactor(maxMomentum, nameof(maxMomentum), "OneCycleLr", 0, 1, minInclusive: true);
            _setMomentum = optimizer switch
            {
                Sgd sgd => m => sgd.Momentum = m,
                RmsProp rms => m => rms.Momentum = m,
                AdamBase adam => m => adam.Beta1 = m,
                _ => throw new ArgumentException($"OneCycleLr: cycleMomentum needs an optimizer with a momentum or β₁ (SGD, RMSprop, Adam, AdamW); {optimizer.Name} has none.", nameof(optimizer)),
            };
            (BaseMomentum, MaxMomentum) = (baseMomentum, maxMomentum);
            _momenta = threePhase
                ? [(maxMomentum, baseMomentum), (baseMomentum, maxMomentum), (maxMomentum, maxMomentum)]
                : [(maxMomentum, baseMomentum), (baseMomentum, maxMomentum)];
        }
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

    /// <summary>Whether the momentum (or β₁) is cycled against the rate.</summary>
    public bool CycleMomentum { get; }

    /// <summary>The momentum at the peak rate (when <see cref="CycleMomentum"/>).</summary>
    public double BaseMomentum { get; }

    /// <summary>The momentum at the start and the end of the cycle (when <see cref="CycleMomentum"/>).</summary>
    public double MaxMomentum { get; }

    /// <summary>The rate at step 0: MaxLr / DivFactor.</summary>
    public double InitialLr => MaxLr / DivFactor;

    /// <summary>The rate at the last step: InitialLr / FinalDivFactor.</summary>
    public double MinLr => InitialLr / FinalDivFactor;

    /// <inheritdoc/>
    public override double LrAt(int epoch, double baseLr)
    {
        var (phase, pct) = Phase(epoch);
        return Anneal(_phases[phase].StartLr, _phases[phase].EndLr, pct);
    }

    /// <summary>The momentum (or β₁) at <paramref name="epoch"/>; only with <see cref="CycleMomentum"/>.</summary>
    public double MomentumAt(int epoch)
    {
        if (!CycleMomentum) throw new InvalidOperationException("OneCycleLr.MomentumAt: this schedule does not cycle momentum (cycleMomentum: false).");
        var (phase, pct) = Phase(epoch);
        return Anneal(_momenta[phase].Start, _momenta[phase].End, pct);
    }

    private protected override void Apply()
    {
        base.Apply();
        _setMomentum?.Invoke(MomentumAt(LastEpoch));
    }

    private (int Phase, double Pct) Phase(int epoch)
    {
        if (epoch > TotalSteps)
            throw new InvalidOperationException($"OneCycleLr: stepped {epoch} times, past the {TotalSteps} total steps of the cycle.");
        double start = 0;
        for (int i = 0; i < _phases.Length; i++)
        {
            double end = _phases[i].EndStep;
            if (epoch <= end || i == _phases.Length - 1) return (i, (epoch - start) / (end - start));
            start = end;
        }
        throw new InvalidOperationException("OneCycleLr: no phase.");
    }

    private double Anneal(double from, double to, double pct) => AnnealStrategy == AnnealStrategy.Cos
        ? to + (from - to) / 2.0 * (Math.Cos(Math.PI * pct) + 1)
        : (to - from) * pct + from;
}
