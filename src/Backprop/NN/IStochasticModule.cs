namespace Backprop.NN;

/// <summary>
/// A module that draws random numbers in training (dropout inside a layer) from a generator of its own.
/// Checkpoints save and restore that generator's state with the model's Dropout layers' (under
/// <c>model/</c> and the module's name), so that a resumed run draws the same masks as an uninterrupted one.
/// </summary>
public interface IStochasticModule
{
    /// <summary>The module's generator, or null when it draws nothing (no dropout configured).</summary>
    Generator? TrainingGenerator { get; }
}
