using Backprop.Text;

namespace Backprop.Cli.Text;

/// <summary>
/// The language models 'backprop train text --model NAME' builds: one switch, so a new model is one
/// line here (its options are already on the command line: --context, --embedding, --layers, --width,
/// --heads, --dropout).
/// </summary>
internal static class TextModelFactory
{
    /// <summary>The names --model accepts.</summary>
    public static readonly string[] Names = ["nlm", "rnn", "lstm", "gru", "gpt"];

    /// <summary>The model <paramref name="o"/> describes over <paramref name="vocabSize"/> tokens.</summary>
    /// <param name="o">The run's options.</param>
    /// <param name="vocabSize">Tokens in the tokenizer's vocabulary.</param>
    /// <param name="boundary">The token that pads before a sequence starts (the boundary of names, else the start token).</param>
    /// <param name="generator">Random numbers for initialization.</param>
    public static LanguageModel Create(TextTrainOptions o, int vocabSize, int boundary, Generator generator) =>
        o.Model switch
        {
            "nlm" => new FixedWindowLm(vocabSize, o.Context, o.Embedding, o.Width, boundary, generator),
            "gpt" => Wrap(() => new Gpt(vocabSize, o.Context, o.Layers, o.Width, o.Heads, o.Dropout, generator)),
            "rnn" => Wrap(() => new RecurrentLanguageModel(RecurrentKind.Rnn, vocabSize, o.Embedding, o.Width, o.Layers, o.Dropout, generator)),
            "lstm" => Wrap(() => new RecurrentLanguageModel(RecurrentKind.Lstm, vocabSize, o.Embedding, o.Width, o.Layers, o.Dropout, generator)),
            "gru" => Wrap(() => new RecurrentLanguageModel(RecurrentKind.Gru, vocabSize, o.Embedding, o.Width, o.Layers, o.Dropout, generator)),
            _ => throw new CliException($"unknown model '{o.Model}'; expected one of: {string.Join(", ", Names)}."),
        };

    private static LanguageModel Wrap(Func<LanguageModel> make)
    {
        try
        {
            return make();
        }
        catch (ArgumentException e)
        {
            throw new CliException(e.Message);
        }
    }

    /// <summary>Whether the model trains on (window, next token) pairs rather than whole sequences.</summary>
    public static bool TrainsOnWindows(LanguageModel model) => model is FixedWindowLm;

    /// <summary>The longest context the model uses when generating.</summary>
    public static int MaxContext(TextTrainOptions o) => o.Context;
}
