namespace Backprop.Cli.Training;

/// <summary>
/// Training stopped because the loss or the parameters stopped being finite (or anomaly detection
/// caught a NaN or infinity in an op): one line naming the epoch and the step, exit code 1.
/// </summary>
public sealed class TrainingDivergedException(string message, Exception? innerException = null) : Exception(message, innerException);
