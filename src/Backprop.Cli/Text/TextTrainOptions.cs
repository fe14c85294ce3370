using System.Globalization;
using System.Text.Json.Nodes;
using Backprop.Cli.Training;

namespace Backprop.Cli.Text;

/// <summary>Everything a text training run needs, after defaults were filled in; checkpoints record it.</summary>
internal sealed record TextTrainOptions
{
    public required string Model { get; init; }
    public required string Data { get; init; }
    /// <summary>One item (a name) per line, each a sequence from boundary to boundary, rather than one running text.</summary>
    public required bool Lines { get; init; }
    public required string Tokenizer { get; init; }
    public required int Context { get; init; }
    public required int Embedding { get; init; }
    public required int Layers { get; init; }
    public required int Width { get; init; }
    public required int Heads { get; init; }
    public required double Dropout { get; init; }
    public required long Steps { get; init; }
    public required int BatchSize { get; init; }
    public required string Optimizer { get; init; }
    public required double Lr { get; init; }
    /// <summary>The learning rate at the last step, as a fraction of <see cref="Lr"/> (cosine decay; 1: constant).</summary>
    public required double MinLrFraction { get; init; }
    public required double WeightDecay { get; init; }
    public required ulong Seed { get; init; }
    public required int EvalEvery { get; init; }
    /// <summary>Sequence models on a running text: truncated BPTT over batch-major streams (state carried and detached between chunks) instead of random windows.</summary>
    public bool Bptt { get; init; }
    /// <summary>Word tokenizer: words seen fewer times in the training text become &lt;unk&gt;.</summary>
    public int MinCount { get; init; } = 1;

    public JsonObject ToJson() => new()
    {
        ["model"] = Model,
        ["data"] = Data,
        ["lines"] = Lines,
        ["tokenizer"] = Tokenizer,
        ["context"] = Context,
        ["embedding"] = Embedding,
        ["layers"] = Layers,
        ["width"] = Width,
        ["heads"] = Heads,
        ["dropout"] = Dropout,
        ["steps"] = Steps,
        ["batch_size"] = BatchSize,
        ["optimizer"] = Optimizer,
        ["lr"] = Lr,
        ["min_lr_fraction"] = MinLrFraction,
        ["weight_decay"] = WeightDecay,
        ["seed"] = Seed.ToString(CultureInfo.InvariantCulture),
        ["eval_every"] = EvalEvery,
        ["bptt"] = Bptt,
        ["min_count"] = MinCount,
    };

    /// <summary>Options recorded by <see cref="ToJson"/>; a one-line <see cref="CliException"/> naming the file and field when one is wrong.</summary>
    public static TextTrainOptions FromJson(JsonObject o, string source)
    {
        try
        {
            string seed = RecordedJson.Text(o, "seed");
            return new TextTrainOptions
            {
                Model = RecordedJson.Text(o, "model"),
                Data = RecordedJson.Text(o, "data"),
                Lines = o["lines"] is JsonValue l && l.TryGetValue<bool>(out bool lb) ? lb : throw new FormatException("'lines' must be true or false"),
                Tokenizer = RecordedJson.Text(o, "tokenizer"),
                Context = RecordedJson.Int(o, "context", 1, MaxContext),
                Embedding = RecordedJson.Int(o, "embedding", 1, MaxWidth),
                Layers = RecordedJson.Int(o, "layers", 1, 64),
                Width = RecordedJson.Int(o, "width", 1, MaxWidth),
                Heads = RecordedJson.Int(o, "heads", 1, 256),
                Dropout = RecordedJson.Number(o, "dropout", 0, 0.99),
                Steps = (long)RecordedJson.Number(o, "steps", 1, int.MaxValue),
                BatchSize = RecordedJson.Int(o, "batch_size", 1, 1 << 16),
                Optimizer = RecordedJson.Text(o, "optimizer"),
                Lr = RecordedJson.Number(o, "lr", 0, 1e6),
                MinLrFraction = RecordedJson.Number(o, "min_lr_fraction", 0, 1),
                WeightDecay = RecordedJson.Number(o, "weight_decay", 0, 1e3),
                Seed = ulong.TryParse(seed, NumberStyles.None, CultureInfo.InvariantCulture, out ulong s)
                    ? s : throw new FormatException($"'seed' must be a non-negative 64-bit integer, found \"{seed}\""),
                EvalEvery = RecordedJson.Int(o, "eval_every", 1, int.MaxValue),
                Bptt = o["bptt"] is JsonValue bp && bp.TryGetValue<bool>(out bool bb) && bb,
                MinCount = o["min_count"] is null ? 1 : RecordedJson.Int(o, "min_count", 1, int.MaxValue),
            };
        }
        catch (FormatException e)
        {
            throw new CliException($"{source}: the recorded text training options are invalid: {Cli.OneLine(e.Message)}.");
        }
    }

    public const int MaxContext = 1 << 16;
    public const int MaxWidth = 1 << 16;
}
