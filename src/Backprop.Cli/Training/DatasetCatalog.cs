using Backprop.Data;

namespace Backprop.Cli.Training;

/// <summary>Training defaults that suit a dataset.</summary>
public sealed record TrainDefaults(string Model, string Activation, string Optimizer, double Lr, int BatchSize, int Epochs);

/// <summary>A dataset the train command knows, with its split loader and defaults.</summary>
/// <param name="Standardize">Whether inputs are shifted and scaled to zero mean and unit variance per feature (train statistics).</param>
/// <param name="CnnDefaults">The defaults with <c>--model cnn</c> (image datasets only).</param>
public sealed record DatasetEntry(string Name, string Description, Func<string?, int?, (TensorDataset Train, TensorDataset Test)> Load,
    TrainDefaults Defaults, bool Standardize = false, TrainDefaults? CnnDefaults = null);

/// <summary>The datasets of <c>backprop train</c>.</summary>
public static class DatasetCatalog
{
    private static (TensorDataset, TensorDataset) Synthetic(Func<ulong, TensorDataset> make) => (make(1), make(1001));

    private static (TensorDataset, TensorDataset) Limit((TensorDataset Train, TensorDataset Test) d, int? limit) =>
        limit is int n ? (d.Train.Subset(0, Math.Min(n, d.Train.Count)), d.Test) : d;

    /// <summary>All entries, the default (embedded digits) first.</summary>
    public static IReadOnlyList<DatasetEntry> All { get; } =
    [
        new("digits", "8x8 handwritten digits (UCI optdigits, embedded: no download)",
            (_, limit) => Limit((Digits.Load(Split.Train), Digits.Load(Split.Test)), limit),
            new("mlp:64-64-10", "relu", "adam", 0.003, 32, 30)),
        new("mnist", "MNIST 28x28 digits from IDX files in --data (default ../shared/data/mnist)",
            (dir, limit) => (Mnist.Load(dir ?? DefaultMnistDir(), Split.Train, limit), Mnist.Load(dir ?? DefaultMnistDir(), Split.Test)),
            new("mlp:784-16-16-10", "sigmoid", "sgd", 0.2, 10, 20), CnnDefaults: new("cnn", "relu", "adam", 2e-3, 128, 15)),
        new("fashion-mnist", "Fashion-MNIST from --data (default /usr/share/datasets/fashion-mnist; apt-get install dataset-fashion-mnist)",
            (dir, limit) => (FashionMnist.Load(dir, Split.Train, limit), FashionMnist.Load(dir, Split.Test)),
            new("mlp:784-256-128-10", "relu", "adam", 1e-3, 128, 5), Standardize: true, CnnDefaults: new("cnn", "relu", "adam", 2e-3, 128, 40)),
        new("cities", "points around Madrid, Paris, Berlin and Barcelona by (longitude, latitude)",
            (_, limit) => Limit(Synthetic(seed => Cities.Generate(samples: 800, seed: seed)), limit),
            new("mlp:2-16-4", "tanh", "adam", 0.05, 32, 40), Standardize: true),
        new("tangled-border", "a wiggly border with enclaves, like Baarle-Hertog on the Belgian-Dutch border",
            (_, limit) => Limit(Synthetic(seed => TangledBorder.Generate(samples: 4000, seed: seed)), limit),
            new("mlp:2-32-32-2", "tanh", "adam", 0.01, 32, 60)),
        new("spirals", "two interleaved spirals",
            (_, limit) => Limit(Synthetic(seed => Spirals.Generate(samples: 1000, seed: seed)), limit),
            new("mlp:2-32-32-2", "tanh", "adam", 0.01, 32, 60)),
        new("circles", "two concentric rings",
            (_, limit) => Limit(Synthetic(seed => Circles.Generate(samples: 1000, seed: seed)), limit),
            new("mlp:2-16-2", "tanh", "adam", 0.02, 32, 30)),
        new("xor", "four blobs labelled by the sign of x·y",
            (_, limit) => Limit(Synthetic(seed => Xor.Generate(samples: 1000, seed: seed)), limit),
            new("mlp:2-8-2", "tanh", "adam", 0.02, 32, 30)),
    ];

    /// <summary>The entry with this name, or a one-line error listing the names.</summary>
    public static DatasetEntry Find(string name) =>
        All.FirstOrDefault(e => e.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
        ?? throw new CliException($"unknown dataset '{name}'; expected one of: {string.Join(", ", All.Select(e => e.Name))}{CliOptions.DidYouMean(name, All.Select(e => e.Name), "'")}.");

    /// <summary>../shared/data/mnist relative to the repository or the working directory, as far as it can be found.</summary>
    private static string DefaultMnistDir()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                var candidate = Path.Combine(d.FullName, "shared", "data", "mnist");
                if (Directory.Exists(candidate)) return candidate;
                candidate = Path.Combine(d.FullName, "data", "mnist");
                if (Directory.Exists(candidate)) return candidate;
            }
        throw new CliException("mnist: no data folder given and none found at ../shared/data/mnist or data/mnist; pass --data DIR (the folder with train-images-idx3-ubyte.gz etc.).");
    }
}
