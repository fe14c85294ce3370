using Backprop.Data;
using Backprop.Text;

namespace Backprop.Cli.Text;

/// <summary>
/// The data of a text run: the tokenizer, the boundary (start) token, and the training and validation
/// sets, as windows (the fixed-window model) or sequences (the others).
/// <list type="bullet">
/// <item>Lines mode (<c>--lines</c>, e.g. names.txt): every non-blank line is one sequence from boundary
/// to boundary; the lines are shuffled with the seed and split 80/10/10 (train/validation/test), as
/// makemore does. The character tokenizer's boundary is '.' (id 0) unless the text holds a '.', then
/// a newline; the word and BPE tokenizers use the newline token.</item>
/// <item>Stream mode (the default, e.g. Tiny Shakespeare): the text is one sequence; the last 10% of its
/// characters are the validation part. The word and BPE tokenizers learn their vocabulary from the
/// training part only; the character tokenizer takes every character of the file (so that validation
/// has no unknown characters).</item>
/// </list>
/// </summary>
internal sealed class TextData
{
    public required ITokenizer Tokenizer { get; init; }
    public required int Boundary { get; init; }
    public required Dataset Train { get; init; }
    public required Dataset Validation { get; init; }
    /// <summary>Validation samples used by an evaluation (sequences in stream mode: non-overlapping windows).</summary>
    public required int[] ValidationIndices { get; init; }
    public required string Description { get; init; }
    /// <summary>With --bptt (sequence models on a running text): the training tokens as batch-major streams.</summary>
    public BpttBatches? Bptt { get; init; }

    /// <summary>Reads <see cref="TextTrainOptions.Data"/> and builds the sets; <paramref name="tokenizer"/> (from a checkpoint) is used instead of training one.</summary>
    public static TextData Load(TextTrainOptions o, ITokenizer? tokenizer, bool windows)
    {
        try
        {
            return o.Lines ? LoadLines(o, tokenizer, windows) : LoadStream(o, tokenizer, windows);
        }
        catch (Exception e) when (e is FileNotFoundException or DataFormatException or UnauthorizedAccessException or IOException)
        {
            throw new CliException($"--data: {Cli.OneLine(e.Message)}");
        }
    }

    private static TextData LoadLines(TextTrainOptions o, ITokenizer? tokenizer, bool windows)
    {
        var lines = TextFile.ReadLines(o.Data);
        var (train, val, _) = TextDatasets.ShuffleSplit(lines, o.Seed);
        if (train.Length == 0 || val.Length == 0)
            throw new CliException($"--data {o.Data}: {lines.Length} line(s) are too few for an 80/10/10 split with a validation part; give at least 10 lines.");
        string all = string.Concat(lines);
        if (tokenizer == null)
        {
            var (kind, _) = Tokenizers.ParseSpec(o.Tokenizer);
            tokenizer = kind == "char"
                ? CharTokenizer.FromText(all, all.Contains('.') ? '\n' : '.')
                : Tokenizers.Train(o.Tokenizer, string.Join("\n", train), o.MinCount);
        }
        int boundary = BoundaryOf(tokenizer, o.Data);
        int[][] Encode(string[] part) => [.. part.Select(l => Encoding(tokenizer, l, o.Data))];
        var tr = Encode(train);
        var va = Encode(val);
        Dataset trainSet, valSet;
        if (windows)
        {
            trainSet = TextDatasets.NextTokenWindows(tr, o.Context, boundary);
            valSet = TextDatasets.NextTokenWindows(va, o.Context, boundary);
        }
        else
        {
            trainSet = TextDatasets.PaddedSequences(tr, boundary);
            valSet = TextDatasets.PaddedSequences(va, boundary);
        }
        return new TextData
        {
            Tokenizer = tokenizer,
            Boundary = boundary,
            Train = trainSet,
            Validation = valSet,
            ValidationIndices = [.. Enumerable.Range(0, valSet.Count)],
            Description = $"{lines.Length} lines of {o.Data} ({train.Length} train / {val.Length} validation / {lines.Length - train.Length - val.Length} test, shuffled with seed {o.Seed})",
        };
    }

    private static TextData LoadStream(TextTrainOptions o, ITokenizer? tokenizer, bool windows)
    {
        string text = TextFile.Read(o.Data);
        int cut = (int)(text.Length * 0.9);
        if (cut > 0 && char.IsLowSurrogate(text[cut])) cut--;
        string trainText = text[..cut], valText = text[cut..];
        tokenizer ??= Tokenizers.ParseSpec(o.Tokenizer).Kind == "char" ? CharTokenizer.FromText(text) : Tokenizers.Train(o.Tokenizer, trainText, o.MinCount);
        var tr = Encoding(tokenizer, trainText, o.Data);
        var va = Encoding(tokenizer, valText, o.Data);
        int boundary = LineBreak(tokenizer) ?? 0;
        if (tr.Length <= o.Context || va.Length <= o.Context)
            throw new CliException($"--data {o.Data}: {tr.Length} training and {va.Length} validation tokens are too few for a context of {o.Context}; give a longer text or a smaller --context.");
        Dataset trainSet = windows ? new CharWindowDataset(tr, o.Context) : TextDatasets.SequenceWindows(tr, o.Context);
        Dataset valSet = windows ? new CharWindowDataset(va, o.Context) : TextDatasets.SequenceWindows(va, o.Context);
        int step = windows ? 1 : o.Context;
        return new TextData
        {
            Tokenizer = tokenizer,
            Boundary = boundary,
            Train = trainSet,
            Validation = valSet,
            ValidationIndices = [.. Enumerable.Range(0, (valSet.Count + step - 1) / step).Select(i => i * step)],
            Description = $"{o.Data}: {tr.Length} train / {va.Length} validation tokens (the last 10% of the text)" +
                (o.Bptt && !windows ? $"; truncated BPTT over {o.BatchSize} streams in chunks of {o.Context}" : ""),
            Bptt = o.Bptt && !windows ? Streams(tr, o) : null,
        };
    }

    private static BpttBatches Streams(int[] tokens, TextTrainOptions o)
    {
        try
        {
            return new BpttBatches(tokens, o.BatchSize, o.Context);
        }
        catch (ArgumentException e)
        {
            throw new CliException($"--bptt: {Cli.OneLine(e.Message)}");
        }
    }

    private static int[] Encoding(ITokenizer tokenizer, string text, string path)
    {
        try
        {
            return tokenizer.Encode(text);
        }
        catch (ArgumentException e)
        {
            throw new CliException($"--data {path}: {Cli.OneLine(e.Message)}");
        }
    }

    private static int BoundaryOf(ITokenizer tokenizer, string path) => tokenizer switch
    {
        CharTokenizer { HasBoundary: true } => 0,
        _ when LineBreak(tokenizer) is int nl => nl,
        _ => throw new CliException($"--data {path}: the {tokenizer.Kind} tokenizer has no single token for a line break, which --lines uses as the boundary."),
    };

    /// <summary>The token of a line break when it is one token, else null.</summary>
    private static int? LineBreak(ITokenizer tokenizer)
    {
        try
        {
            return tokenizer.Encode("\n") is [int nl] ? nl : null;
        }
        catch (ArgumentException)
        {
            return null;   // a character vocabulary without a line break
        }
    }

    /// <summary>../shared/data/tinyshakespeare/input.txt above the working directory or the program, or null.</summary>
    public static string? DefaultShakespeare()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                var candidate = Path.Combine(d.FullName, "shared", "data", "tinyshakespeare", "input.txt");
                if (File.Exists(candidate)) return Path.GetRelativePath(Environment.CurrentDirectory, candidate);
            }
        return null;
    }
}
