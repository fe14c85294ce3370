namespace Backprop.Optim;

/// <summary>Multiplies the learning rate by <see cref="Gamma"/> every <see cref="StepSize"/> epochs: torch.optim.lr_scheduler.StepLR.</summary>
/// <remarks>lr(e) = base · γ^⌊e / stepSize⌋.</remarks>
public sealed class StepLr : LrScheduler
{
    /// <summary>A step schedule on <paramref name="optimizer"/>.</summary>
    public StepLr(Optimizer optimizer, int stepSize, double gamma = 0.1) : base(optimizer)
    {
        if (stepSize < 1) throw new ArgumentOutOfRangeException(nameof(stepSize), stepSize, $"StepLr: stepSize must be at least 1, got {stepSize}.");
        if (!(gamma >= 0) || double.IsInfinity(gamma)) throw new ArgumentOutOfRangeException(nameof(gamma), gamma, $"StepLr: gamma must be a finite number >= 0, got {gamma}.");
        StepSize = stepSize;
        Gamma = gamma;
        Initialize();
    }

    /// <summary>Epochs between decays.</summary>
    public int StepSize { get; }

    /// <summary>Factor applied at each decay.</summary>
    public double Gamma { get; }

    /// <inheritdoc/>
    public override double LrAt(int epoch, double baseLr) => baseLr * Math.Pow(Gamma, epoch / StepSize);
}
