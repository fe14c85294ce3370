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
    };

    /// <summary>Options recorded by <see cref="ToJson"/>; a one-line <see cref="CliException"/> naming <paramref name="source"/> if they are incomplete.</summary>
    public static TrainOptions FromJson(JsonObject o, string source)
    {
        try
        {
            return new TrainOptions
            {
                Dataset = Get<string>(o, "dataset"),
                Model = Get<string>(o, "model"),
                Activation = Get<string>(o, "activation"),
                Loss = Get<string>(o, "loss"),
                Optimizer = Get<string>(o, "optimizer"),
                Lr = Get<double>(o, "lr"),
                Momentum = Get<double>(o, "momentum"),
                WeightDecay = Get<double>(o, "weight_decay"),
                BatchSize = Get<int>(o, "batch_size"),
                Epochs = Get<int>(o, "epochs"),
                Seed = ulong.Parse(Get<string>(o, "seed"), NumberStyles.None, CultureInfo.InvariantCulture),
                DataDir = o["data"] is null ? null : Get<string>(o, "data"),
                Limit = o["limit"] is null ? null : Get<int>(o, "limit"),
            };
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or OverflowException or KeyNotFoundException)
        {
            throw new CliException($"{source}: the recorded training options are incomplete or invalid ({e.Message.TrimEnd('.')}).");
        }
    }

    private static T Get<T>(JsonObject o, string key) =>
        o[key] is JsonValue v ? v.GetValue<T>() : throw new KeyNotFoundException($"no '{key}'");
}
