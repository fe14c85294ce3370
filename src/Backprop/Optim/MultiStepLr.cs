namespace Backprop.Optim;

/// <summary>Multiplies the learning rate by <see cref="Gamma"/> at each milestone epoch: torch.optim.lr_scheduler.MultiStepLR.</summary>
/// <remarks>
/// lr(e) = base · γ^(number of milestones ≤ e). A milestone listed twice decays twice at that epoch, as
/// in PyTorch. The state dict holds the position; the milestones and γ come from the constructor.
/// </remarks>
public sealed class MultiStepLr : LrScheduler
{
    private readonly int[] _milestones;

    /// <summary>A multi-step schedule on <paramref name="optimizer"/> decaying at the epochs in <paramref name="milestones"/>.</summary>
    public MultiStepLr(Optimizer optimizer, IReadOnlyList<int> milestones, double gamma = 0.1) : base(optimizer)
    {
        ArgumentNullException.ThrowIfNull(milestones);
        if (milestones.Any(m => m < 1))
            throw new ArgumentOutOfRangeException(nameof(milestones), $"MultiStepLr: milestones must be positive epochs, got [{string.Join(", ", milestones)}].");
        if (!(gamma >= 0) || double.IsInfinity(gamma)) throw new ArgumentOutOfRangeException(nameof(gamma), gamma, $"MultiStepLr: gamma must be a finite number >= 0, got {gamma}.");
        _milestones = [.. milestones.Order()];
        Gamma = gamma;
        Initialize();
    }

    /// <summary>The epochs at which the rate decays, sorted (repeats kept).</summary>
    public IReadOnlyList<int> Milestones => _milestones;

    /// <summary>Factor applied at each milestone.</summary>
    public double Gamma { get; }

    /// <inheritdoc/>
    public override double LrAt(int epoch, double baseLr)
    {
        int passed = 0;
        while (passed < _milestones.Length && _milestones[passed] <= epoch) passed++;
        return baseLr * Math.Pow(Gamma, passed);
    }
}
