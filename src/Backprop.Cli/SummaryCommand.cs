using System.CommandLine;
using Backprop.Cli.Training;
using Backprop.NN;

namespace Backprop.Cli;

/// <summary><c>backprop summary --model SPEC</c>: each layer's output shape and parameter count, like torchinfo.</summary>
public static class SummaryCommand
{
    /// <summary>The command, for the command tree of <see cref="Cli"/>.</summary>
    internal static Command Create()
    {
        var model = CliOptions.Text("--model", "SPEC", "the model, as for train (for example mlp:784-16-16-10; required)");
        var activation = CliOptions.Choice("--activation", "activation", Activation.Names, "the activation between layers, as for train (default sigmoid)");
        var batch = CliOptions.Int("--batch-size", "rows of the input the shapes are shown for (default 1)", 1, 1 << 20);
        var command = new NotedCommand("summary", "Show a model's layers with their output shapes and parameter counts.")
        {
            Notes = """
                Examples:
                  backprop summary --model mlp:784-16-16-10
                  backprop summary --model mlp:784-256-128-10 --activation relu --batch-size 128
                """,
        };
        foreach (var o in new Option[] { model, activation, batch }) command.Add(o);
        command.SetAction(r =>
        {
            var text = r.GetValue(model) ?? throw new CliException("summary needs --model, for example --model mlp:784-16-16-10.");
            var spec = ModelSpec.Parse(text);
            var net = spec.Build(r.GetValue(activation) ?? "sigmoid", new Generator(0));
            r.InvocationConfiguration.Output.WriteLine(net.Summary(r.GetValue(batch) ?? 1, spec.Sizes[0]).ToString().TrimEnd());
            return 0;
        });
        return command;
    }
}
