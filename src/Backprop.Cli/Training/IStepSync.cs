namespace Backprop.Cli.Training;

/// <summary>
/// What a <see cref="Trainer"/> step asks of data-parallel training (<see cref="DistributedTraining"/>):
/// the loss over all ranks (and whether any rank was asked to stop) before backward, the averaged
/// gradients before the update.
/// </summary>
internal interface IStepSync
{
    /// <summary>This rank (0 to <see cref="Size"/> − 1).</summary>
    int Rank { get; }
    /// <summary>The number of ranks.</summary>
    int Size { get; }
    /// <summary>
    /// Called after the forward pass with this rank's mean loss over its samples; returns the mean
    /// loss over the whole batch (the same on every rank), and sets <see cref="GlobalSamples"/> and
    /// <see cref="StopAgreed"/>.
    /// </summary>
    double AfterForward(double localLoss, int localSamples, bool stopRequested);
    /// <summary>Called after backward: waits for the gradient reductions and writes the averages.</summary>
    void BeforeUpdate();
    /// <summary>The samples of the last step over all ranks.</summary>
    int GlobalSamples { get; }
    /// <summary>Whether some rank was asked to stop (a signal) before the last step's forward pass: every rank stops after it.</summary>
    bool StopAgreed { get; }
    /// <summary>
    /// Copies <paramref name="root"/>'s <paramref name="data"/> to every rank, bit for bit (collective):
    /// how <c>train text</c> gathers the rows of state each rank carries into rank 0's checkpoint.
    /// </summary>
    void Broadcast(Span<float> data, int root);
}
