namespace Backprop.Data;

/// <summary>
/// The MNIST handwritten digits (LeCun, Cortes and Burges; CC BY-SA 3.0): 28×28 grayscale images
/// of the digits 0-9, 60000 for training and 10000 for testing.
/// </summary>
public static class Mnist
{
    /// <summary>The class names, "0" to "9".</summary>
    public static IReadOnlyList<string> ClassNames { get; } = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    /// <summary>
    /// Loads a split from <paramref name="directory"/>, which holds train-images-idx3-ubyte.gz,
    /// train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (or the
    /// same names uncompressed). Inputs are float32 [N, 784], pixels scaled to [0, 1]; targets are
    /// int64 [N] class indices.
    /// </summary>
    /// <param name="directory">Directory holding the IDX files.</param>
    /// <param name="split">Train (60000) or test (10000).</param>
    /// <param name="limit">Load only the first <paramref name="limit"/> samples (fast tests).</param>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="FileNotFoundException">A file of the split is missing.</exception>
    /// <exception cref="DataFormatException">A file is malformed, or images and labels do not match.</exception>
    public static TensorDataset Load(string directory, Split split, int? limit = null) =>
        MnistFormat.Load("MNIST", directory, split, limit, 10, ClassNames);
}
