using System.CommandLine;
using Backprop.Cli.Explain;

namespace Backprop.Cli;

/// <summary><c>backprop explain [name]</c>: prints a worked example step by step, or lists them.</summary>
public static class ExplainCommand
{
    /// <summary>The command, for the command tree of <see cref="Cli"/>.</summary>
    internal static Command Create()
    {
        var names = WorkedExample.All.Select(e => e.Name).ToList();
        var name = CliOptions.Positionals("name", "the worked example to print (none: list them)", names);
        var command = new NotedCommand("explain", "Print a worked example of backprop step by step, with every number.")
        {
            Notes = "Worked examples:\n" + string.Join("\n", WorkedExample.All.Select(e => $"  {e.Name,-24}{e.Summary}")),
        };
        command.Add(name);
        var files = new ExplainFileOptions();
        foreach (var option in files.All()) command.Add(option);
        command.SetAction(r => Run(r.GetValue(name) ?? [], r.InvocationConfiguration.Output, e => files.Apply(r, e)));
        return command;
    }

    /// <summary>Runs the command with its positional arguments.</summary>
    private static int Run(string[] positionals, TextWriter output, Func<WorkedExample, WorkedExample> configure)
    {
        if (positionals.Length == 0)
        {
            output.WriteLine("Worked examples of backpropagation; run 'backprop explain <name>':");
            output.WriteLine();
            foreach (var e in WorkedExample.All) output.WriteLine($"  {e.Name,-24}{e.Summary}");
            return 0;
        }
        if (positionals.Length > 1)
            throw new CliException($"'explain' takes one example name, got {positionals.Length}: {string.Join(" ", positionals)}.");
        var name = positionals[0];
        var example = WorkedExample.All.FirstOrDefault(e => e.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
            ?? throw new CliException($"unknown example '{name}'; expected one of: {string.Join(", ", WorkedExample.All.Select(e => e.Name))}" +
                $"{CliOptions.DidYouMean(name, WorkedExample.All.Select(e => e.Name), "'")}.");
        configure(example).Run(output);
        return 0;
    }
}
