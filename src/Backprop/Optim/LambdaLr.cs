namespace Backprop.Optim;

/// <summary>Sets the learning rate to base · f(epoch) for a function f: torch.optim.lr_scheduler.LambdaLR.</summary>
/// <remarks>
/// The state dict holds the position (epoch and rates) but cannot hold the function: to resume, construct
/// the schedule again with the same function and then load the state dict (PyTorch likewise saves only
/// callable objects, never plain functions).
/// </remarks>
public sealed class LambdaLr : LrScheduler
{
    /// <summary>A schedule on <paramref name="optimizer"/> whose rate is base · <paramref name="lrLambda"/>(epoch).</summary>
    public LambdaLr(Optimizer optimizer, Func<int, double> lrLambda) : base(optimizer)
    {
        ArgumentNullException.ThrowIfNull(lrLambda);
        LrLambda = lrLambda;
        Initialize();
    }

    /// <summary>The multiplier of the base rate as a function of the epoch.</summary>
    public Func<int, double> LrLambda { get; }

    /// <inheritdoc/>
    public override double LrAt(int epoch, double baseLr)
    {
        double f = LrLambda(epoch);
        if (double.IsNaN(f) || double.IsInfinity(f))
            throw new InvalidOperationException($"LambdaLr: the function returned {f} at epoch {epoch}; expected a finite multiplier.");
        return baseLr * f;
    }
}
