namespace Backprop.NN;

/// <summary>
/// What synchronized batch normalization (<see cref="Functional.SyncBatchNorm"/>, like PyTorch's
/// SyncBatchNorm) needs from a group of data-parallel ranks: an element-wise sum over the ranks, and
/// this rank's share of the step's samples. Set on a layer through <see cref="BatchNormBase.Sync"/>;
/// Backprop.Distributed's DistributedDataParallel sets it on every batch-norm layer of the model it
/// wraps when there is more than one rank. The core library knows no transport: this is the seam.
/// </summary>
public abstract class BatchNormSync
{
    /// <summary>
    /// The element-wise sum over the ranks of <paramref name="local"/> (a float32 or float64 vector),
    /// as a new tensor of the same dtype without autograd history. Collective: every rank calls it in
    /// the same order, and every rank gets the same bits.
    /// </summary>
    public abstract Tensor AllReduceSum(Tensor local);

    /// <summary>
    /// This rank's samples over all ranks' samples in the step (1/ranks for equal parts): the local loss
    /// is a mean over this rank's samples, and the backward weighs each rank's gradient sums by it so
    /// that the result is the gradient of the mean over the whole batch (scaled back by 1/share).
    /// </summary>
    public abstract double LocalShare { get; }
}

/// <summary>A group of one: the sum over the ranks is the tensor itself (a layer with it behaves as plain batch norm).</summary>
public sealed class LocalBatchNormSync : BatchNormSync
{
    /// <summary>The identity (a copy without history).</summary>
    public override Tensor AllReduceSum(Tensor local) => local.Detach().Clone();

    /// <inheritdoc/>
    public override double LocalShare => 1;
}
