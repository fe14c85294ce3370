namespace Backprop.Data;

/// <summary>
/// The 8×8 optical handwritten digits (UCI "optdigits", Alpaydin and Kaynak, CC BY 4.0): 64 pixel
/// counts from 0 to 16 per image, 3823 training and 1797 test images. Both splits are embedded in
/// the library, so examples and tests train without any download.
/// </summary>
public static class Digits
{
    /// <summary>Pixels per image (8×8).</summary>
    public const int Features = 64;

    /// <summary>The class names, "0" to "9".</summary>
    public static IReadOnlyList<string> ClassNames => Mnist.ClassNames;

    /// <summary>
    /// The embedded split: train is UCI optdigits.tra (3823 rows), test is optdigits.tes (1797 rows,
    /// the same data as scikit-learn's load_digits). Inputs float32 [N, 64] scaled by 1/16 to [0, 1];
    /// targets int64 [N].
    /// </summary>
    public static TensorDataset Load(Split split)
    {
        string name = split == Split.Train ? "optdigits-train.csv.gz" : "optdigits-test.csv.gz";
        string resource = "Backprop.Data.Resources." + name;
        using var stream = typeof(Digits).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"Digits.Load: the embedded resource {resource} is missing from the Backprop assembly (build problem).");
        using var reader = new StreamReader(new System.IO.Compression.GZipStream(stream, System.IO.Compression.CompressionMode.Decompress));
        return Parse(reader, name);
    }

    /// <summary>
    /// Loads a CSV file in the optdigits layout (no header; 64 pixel counts 0-16 then the label 0-9
    /// per line), plain or gzip-compressed. Same tensors as <see cref="Load"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">A line is malformed; the message gives the file, line and field.</exception>
    public static TensorDataset LoadCsv(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var reader = NumericCsv.Open(path);
        return Parse(reader, path);
    }

    private static TensorDataset Parse(TextReader reader, string name)
    {
        var (values, rows) = NumericCsv.Read(reader, name, Features + 1, static (field, v) =>
            field < Features
                ? (v < 0 || v > 16 || v != Math.Floor(v) ? $"pixel count {v} is not an integer from 0 to 16." : null)
                : (v < 0 || v > 9 || v != Math.Floor(v) ? $"label {v} is not a digit from 0 to 9." : null));
        var x = Tensor.HostEmpty<float>([rows, Features]);
        var y = Tensor.HostEmpty<long>([rows]);
        var xs = x.Span<float>();
        var ys = y.Span<long>();
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < Features; c++) xs[r * Features + c] = (float)(values[r * (Features + 1) + c] / 16);
            ys[r] = (long)values[r * (Features + 1) + Features];
        }
        return new TensorDataset(x, y) { ClassNames = ClassNames };
    }
}
