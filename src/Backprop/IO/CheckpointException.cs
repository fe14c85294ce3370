namespace Backprop.IO;

/// <summary>
/// Base of the checkpoint errors: <see cref="CheckpointFormatException"/> (a malformed file) and
/// <see cref="CheckpointMismatchException"/> (a well-formed checkpoint that does not fit). An
/// <see cref="IOException"/>, so code that already handles failed file reads handles these too.
/// </summary>
public abstract class CheckpointException : IOException
{
    /// <summary>Creates the exception.</summary>
    protected CheckpointException(string message, string? filePath, Exception? innerException)
        : base(message, innerException) => FilePath = filePath;

    /// <summary>The file concerned (or stream name), when there is one.</summary>
    public string? FilePath { get; }
}
