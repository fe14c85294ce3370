using System.Globalization;
using System.IO.Compression;

namespace Backprop.Data;

/// <summary>
/// A reader for headerless CSV files of numbers (one sample per line, comma-separated), plain or
/// gzip-compressed. Errors name the file, the line, the field and what was wrong.
/// </summary>
internal static class NumericCsv
{
    /// <summary>Opens a text file, decompressing it when it starts with the gzip magic (0x1f 0x8b).</summary>
    public static StreamReader Open(string path)
    {
        if (IO.FileKinds.RefuseToRead(path) is string refused)
            throw new DataFormatException($"{path}: {refused}; a CSV file must be a regular file.", path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"CSV file not found: {Path.GetFullPath(path)}", path);
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        Stream s = Idx.IsGzip(file) ? new GzipInput(file, path, ownsFile: true) : file;
        return new StreamReader(s, System.Text.Encoding.UTF8);
    }

    /// <summary>
    /// Reads every non-blank line as <paramref name="columns"/> numbers. Returns the values row by row
    /// and the number of rows.
    /// </summary>
    /// <param name="reader">The text.</param>
    /// <param name="name">The file name for messages.</param>
    /// <param name="columns">Fields per line; null to take the count of the first line.</param>
    /// <param name="check">Optional check of each value, given its 0-based field index: returns what is wrong, or null.</param>
    public static (double[] Values, int Rows) Read(TextReader reader, string name, int? columns, Func<int, double, string?>? check = null)
    {
        var values = new List<double>();
        int rows = 0, lineNo = 0, width = columns ?? -1;
        string? line;
        try
        {
            while ((line = reader.ReadLine()) != null)
            {
                lineNo++;
                var rest = line.AsSpan();
                if (rest.IsWhiteSpace()) continue;
                int field = 0;
                while (true)
                {
                    int comma = rest.IndexOf(',');
                    var text = (comma < 0 ? rest : rest[..comma]).Trim();
                    field++;
                    if (width >= 0 && field > width)
                        throw new DataFormatException(
                            $"{name}, line {lineNo}: more than {width} fields; every line must have {width} comma-separated numbers.", name, line: lineNo);
                    if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v))
                        throw new DataFormatException(
                            $"{name}, line {lineNo}, field {field}: '{Shorten(text)}' is not a number.", name, line: lineNo);
                    if (check?.Invoke(field - 1, v) is string problem)
                        throw new DataFormatException($"{name}, line {lineNo}, field {field}: {problem}", name, line: lineNo);
                    values.Add(v);
                    if (comma < 0) break;
                    rest = rest[(comma + 1)..];
                }
                if (width < 0) width = field;
                else if (field != width)
                    throw new DataFormatException(
                        $"{name}, line {lineNo}: {field} fields, expected {width}; every line must have {width} comma-separated numbers.", name, line: lineNo);
                rows++;
            }
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException($"{name}: corrupt gzip data after line {lineNo}: {e.Message}", name, line: lineNo, innerException: e);
        }
        if (rows == 0)
            throw new DataFormatException($"{name}: no data: the file is empty or has only blank lines.", name, offset: 0);
        return (values.ToArray(), rows);
    }

    private static string Shorten(ReadOnlySpan<char> s) => s.Length <= 40 ? s.ToString() : s[..40].ToString() + "...";
}
