using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Backprop.Cli;

/// <summary>A command-line mistake: printed as one line, exit code 2.</summary>
public sealed class CliException(string message, int exitCode = 2) : Exception(message)
{
    /// <summary>The process's exit code: 2 for a usage error (the default), 74 (EX_IOERR) when a file could not be written.</summary>
    public int ExitCode { get; } = exitCode;
}

/// <summary>
/// Options and arguments for System.CommandLine whose parsers check the value where it is read and
/// report mistakes in the command's one-line style ("option --lr expects a number, got 'abc'.").
/// Every value option is nullable: null means "not given", so a command can tell a default from a
/// value given on the command line (a resumed run keeps what its checkpoint recorded).
/// </summary>
internal static class CliOptions
{
    /// <summary>An option without a value (<c>--json</c>).</summary>
    public static Option<bool> Flag(string name, string description) =>
        new(name) { Description = description, Arity = ArgumentArity.Zero };

    /// <summary>A string option; a value that looks like an option (<c>--data --json</c>) counts as missing.</summary>
    public static Option<string?> Text(string name, string helpName, string description, Func<string, string?>? check = null)
    {
        var o = new Option<string?>(name) { Description = description, HelpName = helpName };
        o.CustomParser = r =>
        {
            if (Value(r, name) is not string s) return null;
            if (check?.Invoke(s) is string problem) r.AddError(problem);
            return s;
        };
        return o;
    }

    /// <summary>One of <paramref name="names"/> (any case), completed in the shell; a mistake lists them and suggests the nearest.</summary>
    public static Option<string?> Choice(string name, string what, IReadOnlyList<string> names, string description)
    {
        var o = Text(name, "NAME", $"{description}: {string.Join(", ", names)}", s =>
            names.Contains(s.ToLowerInvariant()) ? null
            : $"unknown {what} '{s}'; expected one of: {string.Join(", ", names)}{DidYouMean(s, names, "'")}.");
        o.CompletionSources.Add([.. names]);
        return o;
    }

    /// <summary>An integer option within [min, max].</summary>
    public static Option<int?> Int(string name, string description, int min = int.MinValue, int max = int.MaxValue, string helpName = "N")
    {
        var o = new Option<int?>(name) { Description = description, HelpName = helpName };
        o.CustomParser = r =>
        {
            if (Value(r, name) is not string s) return null;
            if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
                r.AddError($"option {name} expects an integer, got '{s}'.");
            else if (v < min || v > max)
                r.AddError($"option {name} must be between {min} and {max}, got {v}.");
            else return v;
            return null;
        };
        return o;
    }

    /// <summary>A finite real-number option within [min, max].</summary>
    public static Option<double?> Double(string name, string description, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        var o = new Option<double?>(name) { Description = description, HelpName = "X" };
        o.CustomParser = r =>
        {
            if (Value(r, name) is not string s) return null;
            if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
                r.AddError($"option {name} expects a number, got '{s}'.");
            else if (v < min || v > max)
                r.AddError($"option {name} must be between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)}, got {s}.");
            else return v;
            return null;
        };
        return o;
    }

    /// <summary>A non-negative 64-bit integer (a seed).</summary>
    public static Option<ulong?> Seed(string name, string description)
    {
        var o = new Option<ulong?>(name) { Description = description, HelpName = "N" };
        o.CustomParser = r =>
        {
            if (Value(r, name) is not string s) return null;
            if (ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v)) return v;
            r.AddError($"option {name} expects a non-negative integer, got '{s}'.");
            return null;
        };
        return o;
    }

    /// <summary>
    /// The command's positional arguments (any number: the command says how many it takes). A token
    /// that looks like an option lands here when the command has no such option, and is reported as one.
    /// </summary>
    public static Argument<string[]> Positionals(string name, string description, IEnumerable<string>? completions = null)
    {
        var a = new Argument<string[]>(name) { Description = description, HelpName = name, Arity = ArgumentArity.ZeroOrMore };
        if (completions != null) a.CompletionSources.Add([.. completions]);
        a.Validators.Add(r =>
        {
            var command = ((CommandResult)r.Parent!).Command;
            if (r.Tokens.FirstOrDefault(t => LooksLikeOption(t.Value)) is Token t)
                r.AddError(UnknownOption(command, t.Value));
        });
        return a;
    }

    /// <summary>The option's value; a missing value, or an option name where the value should be, is an error.</summary>
    private static string? Value(ArgumentResult r, string name)
    {
        // "--lr --json": the parser hands "--json" to --lr as its value; the old parser said "needs a value", and so does this one.
        if (r.Tokens.Count == 0 || (r.Tokens[^1].Value.StartsWith("--", StringComparison.Ordinal) && r.Tokens[^1].Value.Length > 2))
        {
            r.AddError($"option {name} needs a value.");
            return null;
        }
        return r.Tokens[^1].Value;
    }

    /// <summary>True for "-x" and "--x", not for "-", "-5" or "-1e3" (values).</summary>
    public static bool LooksLikeOption(string token) =>
        token.Length > 1 && token[0] == '-' && !double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    /// <summary>The message for an option the command does not have, with the nearest one it has.</summary>
    public static string UnknownOption(Command command, string token)
    {
        int eq = token.IndexOf('=', StringComparison.Ordinal);
        string name = eq > 0 ? token[..eq] : token;
        string path = CommandPath(command);
        return path.Length == 0
            ? $"'backprop' does not accept option {name}{DidYouMean(name, OptionNames(command), "")}; see 'backprop --help'."
            : $"'{path}' does not accept option {name}{DidYouMean(name, OptionNames(command), "")}; see 'backprop {path} --help'.";
    }

    /// <summary>"train", "bench gemm": the command as typed after <c>backprop</c>.</summary>
    public static string CommandPath(Command command)
    {
        var names = new List<string>();
        for (Symbol? s = command; s is Command c && s is not RootCommand; s = s.Parents.FirstOrDefault())
            names.Insert(0, c.Name);
        return string.Join(" ", names);
    }

    /// <summary>The names and aliases of the options a command accepts, its ancestors' recursive ones included.</summary>
    public static IEnumerable<string> OptionNames(Command command)
    {
        foreach (var o in command.Options)
            foreach (var n in o.Aliases.Prepend(o.Name)) yield return n;
        for (var p = command.Parents.OfType<Command>().FirstOrDefault(); p != null; p = p.Parents.OfType<Command>().FirstOrDefault())
            foreach (var o in p.Options.Where(o => o.Recursive))
                foreach (var n in o.Aliases.Prepend(o.Name)) yield return n;
    }

    /// <summary>" (did you mean --epochs?)" for the nearest candidate within a few edits, or "".</summary>
    public static string DidYouMean(string word, IEnumerable<string> candidates, string quote)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        string w = word.ToLowerInvariant();
        foreach (var c in candidates.Distinct())
        {
            int d = Distance(w, c.ToLowerInvariant());
            // A prefix of at least three letters ("--epo") is a near miss too.
            string bare = w.TrimStart('-');
            if (bare.Length >= 3 && c.TrimStart('-').StartsWith(bare, StringComparison.OrdinalIgnoreCase)) d = Math.Min(d, 1);
            if (d < bestDistance) (best, bestDistance) = (c, d);
        }
        // One edit in a word of up to four letters, two up to seven, three beyond; nothing for a single letter.
        int allowed = Math.Clamp((w.TrimStart('-').Length + 1) / 3, 1, 3);
        return best != null && w.TrimStart('-').Length >= 2 && bestDistance <= allowed ? $" (did you mean {quote}{best}{quote}?)" : "";
    }

    /// <summary>Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours.</summary>
    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }
}
