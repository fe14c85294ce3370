namespace Backprop.Optim;

/// <summary>Multiplies the learning rate by <see cref="Gamma"/> every epoch: torch.optim.lr_scheduler.ExponentialLR.</summary>
/// <remarks>lr(e) = base · γ^e.</remarks>
public sealed class ExponentialLr : LrScheduler
{
    /// <summary>An exponential schedule on <paramref name="optimizer"/>.</summary>
    public ExponentialLr(Optimizer optimizer, double gamma) : base(optimizer)
    {
        if (!(gamma >= 0) || double.IsInfinity(gamma)) throw new ArgumentOutOfRangeException(nameof(gamma), gamma, $"ExponentialLr: gamma must be a finite number >= 0, got {gamma}.");
        Gamma = gamma;
        Initialize();
    }

    /// <summary>Factor applied every epoch.</summary>
    public double Gamma { get; }

    /// <inheritdoc/>
    public override double LrAt(int epoch, double baseLr) => baseLr * Math.Pow(Gamma, epoch);
}
