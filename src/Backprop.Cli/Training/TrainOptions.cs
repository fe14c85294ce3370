namespace Backprop.Cli.Training;

/// <summary>Everything a training run needs, after defaults were filled in.</summary>
public sealed record TrainOptions
{
    /// <summary>Dataset name (see <see cref="DatasetCatalog"/>).</summary>
    public required string Dataset { get; init; }
    /// <summary>Model spec, e.g. mlp:784-16-16-10.</summary>
    public required string Model { get; init; }
    /// <summary>Hidden-layer activation.</summary>
    public required string Activation { get; init; }
    /// <summary>cross-entropy or mse.</summary>
    public string Loss { get; init; } = "cross-entropy";
    /// <summary>Optimizer name.</summary>
    public required string Optimizer { get; init; }
    /// <summary>Learning rate.</summary>
    public required double Lr { get; init; }
    /// <summary>Momentum for sgd/momentum/nesterov/rmsprop.</summary>
    public double Momentum { get; init; }
    /// <summary>Weight decay.</summary>
    public double WeightDecay { get; init; }
    /// <summary>Mini-batch size.</summary>
    public required int BatchSize { get; init; }
    /// <summary>Epochs to train.</summary>
    public required int Epochs { get; init; }
    /// <summary>Seed for initialization and shuffling.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>Data folder for file-based datasets.</summary>
    public string? DataDir { get; init; }
    /// <summary>Use only the first N training samples.</summary>
    public int? Limit { get; init; }
}
