using Backprop.Cli.Explain;

namespace Backprop.Cli;

/// <summary><c>backprop explain [name]</c>: prints a worked example step by step, or lists them.</summary>
public static class ExplainCommand
{
    /// <summary>Runs the command.</summary>
    public static int Run(CliArgs args, TextWriter output)
    {
        args.RejectUnknown("explain");
        if (args.Positionals.Count == 0)
        {
            output.WriteLine("Worked examples of backpropagation; run 'backprop explain <name>':");
            output.WriteLine();
            foreach (var e in WorkedExample.All) output.WriteLine($"  {e.Name,-24}{e.Summary}");
            return 0;
        }
        if (args.Positionals.Count > 1)
            throw new CliException($"'explain' takes one example name, got {args.Positionals.Count}: {string.Join(" ", args.Positionals)}.");
        var name = args.Positionals[0];
        var example = WorkedExample.All.FirstOrDefault(e => e.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
            ?? throw new CliException($"unknown example '{name}'; expected one of: {string.Join(", ", WorkedExample.All.Select(e => e.Name))}.");
        example.Run(output);
        return 0;
    }
}
