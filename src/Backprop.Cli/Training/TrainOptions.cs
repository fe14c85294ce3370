using System.Globalization;
using System.Text.Json.Nodes;

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
    /// <summary>Seeded augmentation of the training images (random shifts of up to 2 pixels; horizontal flips too on fashion-mnist).</summary>
    public bool Augment { get; init; }
    /// <summary>The learning rate at the last step as a fraction of <see cref="Lr"/>: cosine decay over all steps of all epochs; 1 (the default) keeps it constant.</summary>
    public double MinLrFraction { get; init; } = 1;

    /// <summary>The options as JSON (snake_case keys), as checkpoints record them.</summary>
    public JsonObject ToJson() => new()
    {
        ["dataset"] = Dataset,
        ["model"] = Model,
        ["activation"] = Activation,
        ["loss"] = Loss,
        ["optimizer"] = Optimizer,
        ["lr"] = Lr,
        ["momentum"] = Momentum,
        ["weight_decay"] = WeightDecay,
        ["batch_size"] = BatchSize,
        ["epochs"] = Epochs,
        // A string: JSON readers outside .NET often hold numbers as doubles, which round large seeds.
        ["seed"] = Seed.ToString(CultureInfo.InvariantCulture),
        ["data"] = DataDir,
        ["limit"] = Limit,
        ["augment"] = Augment,
        ["min_lr_fraction"] = MinLrFraction,
    };

    /// <summary>
    /// Options recorded by <see cref="ToJson"/>, each checked against the range the command line
    /// accepts; a one-line <see cref="CliException"/> naming <paramref name="source"/>, the field and
    /// the value if one is missing, of the wrong type or out of range.
    /// </summary>
    public static TrainOptions FromJson(JsonObject o, string source)
    {
        try
        {
            string seed = RecordedJson.Text(o, "seed");
            return new TrainOptions
            {
                Dataset = RecordedJson.Text(o, "dataset"),
                Model = RecordedJson.Text(o, "model"),
                Activation = RecordedJson.Text(o, "activation"),
                Loss = RecordedJson.Text(o, "loss"),
                Optimizer = RecordedJson.Text(o, "optimizer"),
                Lr = RecordedJson.Number(o, "lr", 0, 1e6),
                Momentum = RecordedJson.Number(o, "momentum", 0, 1),
                WeightDecay = RecordedJson.Number(o, "weight_decay", 0, 1e3),
                BatchSize = RecordedJson.Int(o, "batch_size", 1, MaxBatchSize),
                Epochs = RecordedJson.Int(o, "epochs", 1, MaxEpochs),
                Seed = ulong.TryParse(seed, NumberStyles.None, CultureInfo.InvariantCulture, out ulong s)
                    ? s : throw new FormatException($"'seed' must be a non-negative 64-bit integer, found \"{seed}\""),
                DataDir = o["data"] is null ? null : RecordedJson.Text(o, "data"),
                Limit = o["limit"] is null ? null : RecordedJson.Int(o, "limit", 1, int.MaxValue),
                // absent in checkpoints written before augmentation existed: off
                Augment = o["augment"] is JsonValue a && a.TryGetValue<bool>(out bool augment) && augment,
                // absent in checkpoints written before --min-lr existed: a constant rate
                MinLrFraction = o["min_lr_fraction"] is null ? 1 : RecordedJson.Number(o, "min_lr_fraction", 0, 1),
            };
        }
        catch (FormatException e)
        {
            throw new CliException($"{source}: the recorded training options are invalid: {Cli.OneLine(e.Message)}.");
        }
    }

    /// <summary>The largest batch size accepted (by --batch-size and from a checkpoint).</summary>
    public const int MaxBatchSize = 1 << 20;

    /// <summary>The largest epoch count accepted (by --epochs and from a checkpoint).</summary>
    public const int MaxEpochs = 100000;
}
