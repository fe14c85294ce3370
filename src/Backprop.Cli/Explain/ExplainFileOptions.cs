using System.CommandLine;

namespace Backprop.Cli.Explain;

/// <summary>The options of <c>explain sensitivity</c> and <c>explain landscape</c>, and how they reach those examples.</summary>
internal sealed class ExplainFileOptions
{
    public readonly Option<string?> Checkpoint = CliOptions.Text("--checkpoint", "PATH", "sensitivity, landscape: the model of a checkpoint written by 'backprop train' (default: sensitivity trains a small digit network, landscape uses the cities example)");
    public readonly Option<int?> Samples = CliOptions.Int("--samples", "sensitivity, landscape: training examples to average over (default 500)", 1, 1 << 24);
    public readonly Option<string?> Param = CliOptions.Text("--param", "NAME[i,j]", "landscape (with --checkpoint): the parameter entry to move, e.g. 0.weight[3,5] or 2.bias[1]");
    public readonly Option<int?> Example = CliOptions.Int("--example", "sensitivity: the test example whose nudges are shown (default: the first one the model gets wrong)", 0);
    public readonly Option<string?> Out = CliOptions.Text("--out", "FILE.png", "landscape: draw the curve and the tangent there (an SVG is written beside it)");
    public readonly Option<int?> Class = CliOptions.Int("--class", "dream: the class to dream of (default 8)", 0, 1 << 20);
    public readonly Option<string?> OutDir = CliOptions.Text("--out-dir", "DIR", "adversarial, dream: where the images go (default: the current folder)");

    public IEnumerable<Option> All() => [Checkpoint, Samples, Example, Param, Out, Class, OutDir];

    /// <summary>
    /// A copy of <paramref name="example"/> with the options given (the shared instances in
    /// <see cref="WorkedExample.All"/> stay as they are); an option that the example does not take is a one-line error.
    /// </summary>
    public WorkedExample Apply(ParseResult r, WorkedExample example)
    {
        bool sens = example is SensitivityExample, land = example is LandscapeExample, adv = example is AdversarialExample, dream = example is DreamExample;
        foreach (var (option, ok, owner) in new (Option, bool, string)[]
        {
            (Checkpoint, sens || land || adv || dream, "sensitivity', 'landscape', 'adversarial' or 'explain dream"), (Samples, sens || land, "sensitivity' or 'explain landscape"),
            (Example, sens || adv, "sensitivity' or 'explain adversarial"), (Param, land, "landscape"), (Out, land, "landscape"), (Class, dream, "dream"), (OutDir, adv || dream, "adversarial' or 'explain dream"),
        })
            if (r.GetResult(option) != null && !ok)
                throw new CliException($"{option.Name} does not apply to 'explain {example.Name}'; it is an option of 'explain {owner}'.");
        return example switch
        {
            SensitivityExample => new SensitivityExample
            {
                CheckpointPath = r.GetValue(Checkpoint),
                Samples = r.GetValue(Samples) ?? 500,
                Example = r.GetValue(Example),
            },
            LandscapeExample => new LandscapeExample
            {
                OutPath = r.GetValue(Out),
                CheckpointPath = r.GetValue(Checkpoint),
                Parameter = r.GetValue(Param),
                Samples = r.GetValue(Samples) ?? 500,
            },
            AdversarialExample => new AdversarialExample { CheckpointPath = r.GetValue(Checkpoint), Example = r.GetValue(Example), OutDir = r.GetValue(OutDir) },
            DreamExample => new DreamExample { CheckpointPath = r.GetValue(Checkpoint), Class = r.GetValue(Class) ?? 8, OutDir = r.GetValue(OutDir) },
            _ => example,
        };
    }
}
