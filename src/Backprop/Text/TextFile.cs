using Backprop.Data;

namespace Backprop.Text;

/// <summary>Reads UTF-8 text files with one-line errors that name the file and what is wrong.</summary>
public static class TextFile
{
    /// <summary>
    /// The text of a UTF-8 file (a leading byte-order mark is skipped). A missing file, an empty one, or
    /// bytes that are not UTF-8 give an error naming the file and, for bad bytes, the byte offset and line.
    /// </summary>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
    /// <exception cref="DataFormatException">The file is empty, not UTF-8, or not a regular file.</exception>
    public static string Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (IO.FileKinds.RefuseToRead(path) is string refused)
            throw new DataFormatException($"{path}: {refused}; a text file must be a regular file.", path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"text file not found: {Path.GetFullPath(path)}", path);
        return TextCorpus.DecodeUtf8(File.ReadAllBytes(path), path);
    }

    /// <summary>
    /// The non-blank lines of a UTF-8 file (a trailing CR is dropped), for one-item-per-line data such
    /// as names.txt.
    /// </summary>
    /// <exception cref="DataFormatException">The file has only blank lines (or see <see cref="Read"/>).</exception>
    public static string[] ReadLines(string path)
    {
        var lines = Read(path).Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToArray();
        if (lines.Length == 0) throw new DataFormatException($"{path}: the file has only blank lines; one item per line is expected.", path, 0);
        return lines;
    }
}
