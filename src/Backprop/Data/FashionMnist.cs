namespace Backprop.Data;

/// <summary>
/// Fashion-MNIST (Zalando Research; MIT license): 28×28 grayscale images of 10 kinds of clothing,
/// in the MNIST file layout, 60000 for training and 10000 for testing.
/// </summary>
public static class FashionMnist
{
    /// <summary>Where Debian's dataset-fashion-mnist package installs the files.</summary>
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The class names, by label.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>
    /// Loads a split from <paramref name="directory"/> (default <see cref="DefaultDirectory"/>), with
    /// the same file names and tensor layout as <see cref="Mnist.Load"/>: float32 [N, 784] in [0, 1]
    /// and int64 [N] labels.
    /// </summary>
    /// <param name="directory">Directory holding the IDX files; null for <see cref="DefaultDirectory"/>.</param>
    /// <param name="split">Train (60000) or test (10000).</param>
    /// <param name="limit">Load only the first <paramref name="limit"/> samples.</param>
    public static TensorDataset Load(string? directory, Split split, int? limit = null) =>
        MnistFormat.Load("Fashion-MNIST", directory ?? DefaultDirectory, split, limit, 10, ClassNames,
            directory == null ? $"On Debian or Ubuntu, 'apt-get install dataset-fashion-mnist' puts them in {DefaultDirectory}; or pass the directory that holds them." : null);
}
