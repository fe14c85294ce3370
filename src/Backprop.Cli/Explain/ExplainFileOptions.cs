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

    public IEnumerable<Option> All() => [Checkpoint, Samples, Example, Param, Out];

    /// <summary>
    /// A copy of <paramref name="example"/> with the options given (the shared instances in
    /// <see cref="WorkedExample.All"/> stay as they are); an option that the example does not take is a one-line error.
    /// </summary>
    public WorkedExample Apply(ParseResult r, WorkedExample example)
    {
        bool sens = example is SensitivityExample, land = example is LandscapeExample;
        foreach (var (option, ok, owner) in new (Option, bool, string)[] { (Checkpoint, sens || land, "sensitivity' or 'explain landscape"), (Samples, sens || land, "sensitivity' or 'explain landscape"), (Example, sens, "sensitivity"), (Param, land, "landscape"), (Out, land, "landscape") })
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
            _ => example,
        };
    }
}
