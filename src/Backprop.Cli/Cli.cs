namespace Backprop.Cli;

/// <summary>Entry point of the <c>backprop</c> command: dispatches to subcommands and turns mistakes into one-line errors.</summary>
public static class Cli
{
    private const string Usage = """
        backprop: train neural networks and watch backpropagation work.

        usage:
          backprop train [dataset] [options]   train a network (no dataset: the built-in 8x8 digits)
          backprop explain [name]              print a worked example of backprop step by step
          backprop bench gemm|peak|model       measure GEMM GFLOP/s, the FMA peak, or a model's training speed
          backprop --help                      this text

        'backprop train --help' lists the training options.
        """;

    /// <summary>Runs the command line; returns the process exit code (0 ok, 2 usage or input error, 1 failure).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
            {
                stdout.WriteLine(Usage);
                return args.Length == 0 ? 2 : 0;
            }
            var rest = args[1..];
            switch (args[0])
            {
                case "train":
                    return Training.TrainCommand.Run(CliArgs.Parse(rest, Training.TrainCommand.Flags), stdout, stderr);
                case "bench":
                    return Bench.BenchCommand.Run(CliArgs.Parse(rest, Bench.BenchCommand.Flags), stdout);
                case "explain":
                    return ExplainCommand.Run(CliArgs.Parse(rest, []), stdout);
                default:
                    throw new CliException($"unknown command '{args[0]}'; expected train, explain or bench (see 'backprop --help').");
            }
        }
        catch (CliException e)
        {
            stderr.WriteLine($"error: {OneLine(e.Message)}");
            return 2;
        }
        catch (Training.TrainingDivergedException e)
        {
            stderr.WriteLine($"error: {OneLine(e.Message)}");
            return 1;
        }
    }

    /// <summary>The message with control characters escaped (an argument may hold a newline), so that an error stays one line.</summary>
    internal static string OneLine(string message)
    {
        if (!message.Any(c => char.IsControl(c) || c is '\u2028' or '\u2029')) return message;
        var sb = new System.Text.StringBuilder(message.Length + 16);
        foreach (var c in message)
            sb.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when char.IsControl(c) || c is '\u2028' or '\u2029' => $"\\u{(int)c:X4}",
                _ => c.ToString(),
            });
        return sb.ToString();
    }
}
