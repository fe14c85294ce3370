using Backprop.Cli;

// A full or closed stdout (> /dev/full, a pipe closed by head) ends with one line on stderr and
// exit code 74, not a stack trace (docs/cli.md).
var stdout = OutputGuard.Stdout();
try
{
    int code = Cli.Run(args, stdout, Console.Error);
    stdout.Flush();
    return code;
}
catch (Exception e) when (OutputGuard.IsOutputError(e))
{
    return OutputGuard.Report(e, Console.Error);
}
