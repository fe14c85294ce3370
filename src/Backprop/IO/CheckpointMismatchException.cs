namespace Backprop.IO;

/// <summary>
/// A well-formed checkpoint does not fit what it is being restored into: missing or unexpected
/// keys, shape or dtype mismatches, another optimizer type, a data loader with other settings. Every
/// problem found is listed (in the message and in <see cref="Problems"/>), and nothing was modified.
/// </summary>
public sealed class CheckpointMismatchException : CheckpointException
{
    /// <summary>Creates the exception from the list of problems.</summary>
    public CheckpointMismatchException(string? filePath, IReadOnlyList<string> problems, Exception? innerException = null)
        : base(Format(filePath, problems), filePath, innerException) => Problems = problems;

    /// <summary>Each problem, one sentence each (e.g. "'model.0.weight': expected shape [64, 64] float32, found [32, 64] float32").</summary>
    public IReadOnlyList<string> Problems { get; }

    private static string Format(string? filePath, IReadOnlyList<string> problems) =>
        $"{filePath ?? "checkpoint"}: does not fit what it is restored into, nothing was changed: {string.Join("; ", problems)}.";
}
