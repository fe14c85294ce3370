using System.CommandLine;
using System.CommandLine.Completions;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Reflection;
using System.Text.RegularExpressions;

namespace Backprop.Cli;

/// <summary>Entry point of the <c>backprop</c> command: dispatches to subcommands and turns mistakes into one-line errors.</summary>
public static class Cli
{
    /// <summary>Runs the command line; returns the process exit code (0 ok, 2 usage or input error, 1 failure, 3 below --min-accuracy).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            var (parsed, error) = Parse(args);
            if (error != null) throw new CliException(error);
            return parsed.Invoke(new InvocationConfiguration
            {
                Output = stdout,
                Error = stderr,
                // Errors are ours to print (one line, no stack trace); Ctrl+C keeps its default meaning.
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = null,
            });
        }
        catch (CliException e)
        {
            stderr.WriteLine($"error: {OneLine(e.Message)}");
            return e.ExitCode;
        }
        catch (Training.TrainingDivergedException e)
        {
            stderr.WriteLine($"error: {OneLine(e.Message)}");
            return 1;
        }
    }

    /// <summary>
    /// Parses <paramref name="args"/>; the error is the first mistake in the command's one-line style
    /// (null when the command line can run). Runs nothing.
    /// </summary>
    internal static (ParseResult Result, string? Error) Parse(IReadOnlyList<string> args)
    {
        // "backprop help [command]" is "backprop [command] --help".
        if (args.Count > 0 && args[0] == "help") args = [.. args.Skip(1), "--help"];
        var root = CreateRoot();
        // No response files: "@name" is an argument like any other.
        var result = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        // Help and completion ([suggest]) work on any command line, mistakes included.
        if (result.Action is HelpWithNotes || result.GetResult(root.Directives.OfType<SuggestDirective>().Single()) != null) return (result, null);
        return (result, Repeated(result, args) ?? (result.Action is ParseErrorAction ? FirstError(result) : null));
    }

    private const string RootNotes = """
        Run 'backprop <command> --help' for a command's options.
        Exit codes: 0 success; 2 a mistake in the arguments or the input data (one line on stderr);
        3 --min-accuracy not reached; 1 training diverged.
        Tab completion: install dotnet-suggest (see docs/cli.md).
        """;

    /// <summary>The command tree (built per call: the parser's symbols are not meant to be shared between threads).</summary>
    internal static RootCommand CreateRoot()
    {
        var root = new RootCommand("backprop: train neural networks and watch backpropagation work.");
        // Only --help, -h and -?: the default "/h" and "/?" would take over paths given as values.
        foreach (var o in root.Options.OfType<HelpOption>().ToList()) root.Options.Remove(o);
        var help = new HelpOption("--help", "-h", "-?") { Recursive = true };
        help.Action = new HelpWithNotes((SynchronousCommandLineAction)help.Action!, RootNotes);
        root.Options.Add(help);
        // The version of this assembly (System.CommandLine's own action reads the entry assembly's, which is the test host's under test).
        root.Options.OfType<VersionOption>().Single().Action = new PrintVersion();
        root.Add(Training.TrainCommand.Create());
        root.Add(PredictCommand.Create());
        root.Add(SummaryCommand.Create());
        root.Add(ExplainCommand.Create());
        root.Add(Bench.BenchCommand.Create());
        root.Add(Text.GenerateCommand.Create());
        root.Add(Viz.VizCommand.Create());
        root.SetAction(ShowHelpAndFail);
        return root;
    }

    /// <summary>Prints the command's help on stdout and returns 2: a command that needs a subcommand got none.</summary>
    internal static int ShowHelpAndFail(ParseResult r)
    {
        var help = r.RootCommandResult.Command.Options.OfType<HelpOption>().First();
        ((SynchronousCommandLineAction)help.Action!).Invoke(r);
        return 2;
    }

    /// <summary>A flag given a value ("--json=1", which the parser would split into a flag and a positional argument) or an option given twice.</summary>
    private static string? Repeated(ParseResult r, IReadOnlyList<string> args)
    {
        var flags = new HashSet<string>(Flags(r.RootCommandResult.Command), StringComparer.Ordinal);
        foreach (var a in args.TakeWhile(a => a != "--"))
            if (a.StartsWith("--", StringComparison.Ordinal) && a.IndexOf('=', StringComparison.Ordinal) is int eq and > 2 && flags.Contains(a[..eq]))
                return $"option {a[..eq]} takes no value.";
        for (SymbolResult? s = r.CommandResult; s != null; s = s.Parent)
            if (s is CommandResult c && c.Children.OfType<OptionResult>().FirstOrDefault(o => o.IdentifierTokenCount > 1) is OptionResult twice)
                return $"option {twice.Option.Name} is given more than once.";
        return null;
    }

    /// <summary>The first parse error, in the words of the old hand-written parser where it had words for it.</summary>
    private static string FirstError(ParseResult r)
    {
        foreach (var e in r.Errors)
        {
            if (e.SymbolResult is OptionResult o && o.Tokens.Count == 0 && o.Option.Arity.MinimumNumberOfValues > 0)
                return $"option {o.Option.Name} needs a value.";
            if (e.SymbolResult is CommandResult c && r.UnmatchedTokens.Count > 0)
                return Unmatched(c.Command, r.UnmatchedTokens[0]);
            return e.Message;
        }
        return "invalid command line.";
    }

    private static IEnumerable<string> Flags(Command command) =>
        command.Options.Where(o => o.Arity.MaximumNumberOfValues == 0).SelectMany(o => o.Aliases.Prepend(o.Name))
            .Concat(command.Subcommands.SelectMany(Flags));

    /// <summary>A word that no command, option or argument took.</summary>
    private static string Unmatched(Command command, string token)
    {
        if (CliOptions.LooksLikeOption(token)) return CliOptions.UnknownOption(command, token);
        var names = command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name).ToList();
        if (command is RootCommand)
            return $"unknown command '{token}'; expected {string.Join(", ", names)}{CliOptions.DidYouMean(token, names, "'")} (see 'backprop --help').";
        string path = CliOptions.CommandPath(command);
        if (names.Count > 0)
            return $"unknown {(path == "bench" ? "benchmark" : path + " command")} '{token}'; expected {string.Join(", ", names)}{CliOptions.DidYouMean(token, names, "'")} (see 'backprop {path} --help').";
        return $"'{path}' takes no positional arguments, got '{token}'; see 'backprop {path} --help'.";
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

/// <summary>Prints the version of the command (the informational version: 0.1.0+commit).</summary>
internal sealed class PrintVersion : SynchronousCommandLineAction
{
    /// <inheritdoc/>
    public override int Invoke(ParseResult parseResult)
    {
        if (parseResult.Tokens.Count > 1)
            throw new CliException("option --version cannot be combined with other arguments.");
        var assembly = typeof(Cli).Assembly;
        parseResult.InvocationConfiguration.Output.WriteLine(
            assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? assembly.GetName().Version?.ToString() ?? "unknown");
        return 0;
    }
}

/// <summary>A command with notes that its help prints after the options (datasets, examples, models).</summary>
internal sealed class NotedCommand(string name, string description) : Command(name, description)
{
    /// <summary>Text printed after the generated help.</summary>
    public string? Notes { get; init; }
}

/// <summary>System.CommandLine's help followed by a command's own notes.</summary>
internal sealed class HelpWithNotes(SynchronousCommandLineAction inner, string rootNotes) : SynchronousCommandLineAction
{
    /// <inheritdoc/>
    public override bool ClearsParseErrors => true;

    /// <inheritdoc/>
    public override int Invoke(ParseResult parseResult)
    {
        // The generated usage lines name the executable (Backprop.Cli); the command is installed as 'backprop'.
        var config = parseResult.InvocationConfiguration;
        var output = config.Output;
        var help = new StringWriter();
        config.Output = help;
        try
        {
            inner.Invoke(parseResult);
        }
        finally
        {
            config.Output = output;
        }
        var root = parseResult.RootCommandResult.Command.Name;
        // Every positional argument takes at most one word, which "[<name>...]" would not say.
        output.Write(Regex.Replace(help.ToString().Replace($"  {root} ", "  backprop ", StringComparison.Ordinal), @"\[<([a-z]+)>\.\.\.\]", "[<$1>]"));
        var command = parseResult.CommandResult.Command;
        if ((command is NotedCommand n ? n.Notes : command is RootCommand ? rootNotes : null) is string notes)
        {
            output.WriteLine(notes.TrimEnd());
            output.WriteLine();
        }
        return 0;
    }
}
