namespace Backprop.Data;

/// <summary>
/// A data file is malformed: wrong magic number, unsupported type, truncated, trailing bytes, a bad CSV
/// field. The message names the file and where the problem is; <see cref="FilePath"/>,
/// <see cref="Offset"/> and <see cref="Line"/> carry the same facts for programs.
/// </summary>
public sealed class DataFormatException : FormatException
{
    /// <summary>Creates the exception; <paramref name="message"/> should already name the file and the position.</summary>
    public DataFormatException(string message, string filePath, long? offset = null, int? line = null, Exception? innerException = null)
        : base(message, innerException)
    {
        FilePath = filePath;
        Offset = offset;
        Line = line;
    }

    /// <summary>The file that is malformed.</summary>
    public string FilePath { get; }

    /// <summary>Byte offset of the problem (in the decompressed data for gzip files), when it has one.</summary>
    public long? Offset { get; }

    /// <summary>1-based line number of the problem in a text file, when it has one.</summary>
    public int? Line { get; }
}
