namespace Backprop.IO;

/// <summary>
/// A safetensors file or checkpoint is malformed: truncated, a corrupt or implausible header, an
/// unknown dtype, a shape that disagrees with its byte range, data ranges that overlap or leave gaps.
/// The message names the file, the tensor (key) and the byte offset; <see cref="CheckpointException.FilePath"/>,
/// <see cref="Key"/> and <see cref="Offset"/> carry the same facts for programs.
/// </summary>
public sealed class CheckpointFormatException : CheckpointException
{
    /// <summary>Creates the exception; <paramref name="message"/> should already name the file, the key and the offset.</summary>
    public CheckpointFormatException(string message, string filePath, string? key = null, long? offset = null, Exception? innerException = null)
        : base(message, filePath, innerException)
    {
        Key = key;
        Offset = offset;
    }

    /// <summary>The tensor or metadata key the problem concerns, when there is one.</summary>
    public string? Key { get; }

    /// <summary>Byte offset in the file where the problem is, when there is one.</summary>
    public long? Offset { get; }
}
