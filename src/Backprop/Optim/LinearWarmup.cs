namespace Backprop.Optim;

/// <summary>
/// Ramps the learning rate linearly from startFactor·base to endFactor·base over
/// <see cref="WarmupSteps"/> steps, then holds it: torch.optim.lr_scheduler.LinearLR with
/// total_iters = warmupSteps.
/// </summary>
/// <remarks>lr(e) = base · (s + (f − s) · min(e, W) / W).</remarks>
public sealed class LinearWarmup : LrScheduler
{
    /// <summary>A linear warm-up on <paramref name="optimizer"/> (PyTorch's defaults: start at a third of the rate).</summary>
    public LinearWarmup(Optimizer optimizer, int warmupSteps, double startFactor = 1.0 / 3, double endFactor = 1.0) : base(optimizer)
    {
        if (warmupSteps < 1) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, $"LinearWarmup: warmupSteps must be at least 1, got {warmupSteps}.");
        CheckFactor(startFactor, nameof(startFactor), "LinearWarmup", 0, 1, minInclusive: false);
        CheckFactor(endFactor, nameof(endFactor), "LinearWarmup", 0, 1, minInclusive: true);
        WarmupSteps = warmupSteps;
        StartFactor = startFactor;
        EndFactor = endFactor;
        Initialize();
    }

    /// <summary>Steps until the rate reaches endFactor·base.</summary>
    public int WarmupSteps { get; }

    /// <summary>Fraction of the base rate at step 0.</summary>
    public double StartFactor { get; }

    /// <summary>Fraction of the base rate from step <see cref="WarmupSteps"/> on.</summary>
    public double EndFactor { get; }

    /// <inheritdoc/>
    public override double LrAt(int epoch, double baseLr) =>
        baseLr * (StartFactor + (EndFactor - StartFactor) * Math.Min(epoch, WarmupSteps) / WarmupSteps);
}
