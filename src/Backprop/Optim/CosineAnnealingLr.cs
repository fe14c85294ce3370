namespace Backprop.Optim;

/// <summary>Cosine annealing from the base rate down to <see cref="EtaMin"/> over <see cref="TMax"/> epochs: torch.optim.lr_scheduler.CosineAnnealingLR.</summary>
/// <remarks>
/// lr(e) = ηmin + (base − ηmin) · (1 + cos(π·e / Tmax)) / 2, PyTorch's closed form. Past Tmax the
/// cosine continues (the rate rises again), as in PyTorch; stop stepping or chain another schedule.
/// </remarks>
public sealed class CosineAnnealingLr : LrScheduler
{
    /// <summary>A cosine schedule on <paramref name="optimizer"/>.</summary>
    public CosineAnnealingLr(Optimizer optimizer, int tMax, double etaMin = 0) : base(optimizer)
    {
        if (tMax < 1) throw new ArgumentOutOfRangeException(nameof(tMax), tMax, $"CosineAnnealingLr: tMax must be at least 1, got {tMax}.");
        if (!(etaMin >= 0) || double.IsInfinity(etaMin)) throw new ArgumentOutOfRangeException(nameof(etaMin), etaMin, $"CosineAnnealingLr: etaMin must be a finite number >= 0, got {etaMin}.");
        TMax = tMax;
        EtaMin = etaMin;
        Initialize();
    }

    /// <summary>Epochs of the half cosine from the base rate to <see cref="EtaMin"/>.</summary>
    public int TMax { get; }

    /// <summary>The lowest learning rate.</summary>
    public double EtaMin { get; }

    /// <inheritdoc/>
    public override double LrAt(int epoch, double baseLr) =>
        EtaMin + (baseLr - EtaMin) * (1 + Math.Cos(Math.PI * epoch / TMax)) / 2;
}
