using System.Globalization;

namespace Backprop.Cli;

/// <summary>A command-line mistake: printed as one line, exit code 2.</summary>
public sealed class CliException(string message) : Exception(message);

/// <summary>
/// Parsed arguments: positionals plus <c>--name value</c>, <c>--name=value</c> and boolean <c>--flag</c>
/// options. Each command declares the options it accepts; anything else is an error that names it.
/// </summary>
public sealed class CliArgs
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    /// <summary>Positional arguments in order.</summary>
    public List<string> Positionals { get; } = [];

    /// <summary>Parses <paramref name="args"/>; <paramref name="flags"/> are the options that take no value.</summary>
    public static CliArgs Parse(IReadOnlyList<string> args, IReadOnlyCollection<string> flags)
    {
        var r = new CliArgs();
        for (int i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (a == "--")
            {
                r.Positionals.AddRange(args.Skip(i + 1));
                break;
            }
            if (a.StartsWith("--", StringComparison.Ordinal) && a.Length > 2)
            {
                string name = a[2..];
                string? value = null;
                int eq = name.IndexOf('=');
                if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
                if (name.Length == 0) throw new CliException($"invalid option '{a}'.");
                if (r._options.ContainsKey(name)) throw new CliException($"option --{name} is given more than once.");
                if (flags.Contains(name))
                {
                    if (value != null) throw new CliException($"option --{name} takes no value.");
                }
                else if (value == null)
                {
                    if (i + 1 >= args.Count || (args[i + 1].StartsWith("--", StringComparison.Ordinal) && args[i + 1].Length > 2))
                        throw new CliException($"option --{name} needs a value.");
                    value = args[++i];
                }
                r._options[name] = value;
            }
            else if (a.StartsWith('-') && a.Length > 1 && !double.TryParse(a, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
                throw new CliException($"unknown option '{a}' (options start with --).");
            else r.Positionals.Add(a);
        }
        return r;
    }

    /// <summary>True when the option or flag was given (without marking it as used).</summary>
    public bool Has(string name) => _options.ContainsKey(name);

    /// <summary>True when the flag was given.</summary>
    public bool Flag(string name)
    {
        _used.Add(name);
        return _options.ContainsKey(name);
    }

    /// <summary>The option's value, or <paramref name="fallback"/>.</summary>
    public string? String(string name, string? fallback = null)
    {
        _used.Add(name);
        return _options.TryGetValue(name, out var v) ? v : fallback;
    }

    /// <summary>An integer option within [min, max].</summary>
    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        var s = String(name);
        if (s == null) return fallback;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            throw new CliException($"option --{name} expects an integer, got '{s}'.");
        if (v < min || v > max)
            throw new CliException($"option --{name} must be between {min} and {max}, got {v}.");
        return v;
    }

    /// <summary>A real-number option within [min, max].</summary>
    public double Double(string name, double fallback, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        var s = String(name);
        if (s == null) return fallback;
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
            throw new CliException($"option --{name} expects a number, got '{s}'.");
        if (v < min || v > max)
            throw new CliException($"option --{name} must be between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)}, got {s}.");
        return v;
    }

    /// <summary>Throws if an option was given that the command never asked for.</summary>
    public void RejectUnknown(string command)
    {
        var unknown = _options.Keys.Where(k => !_used.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new CliException($"'{command}' does not accept option --{unknown[0]}; see 'backprop {command} --help'.");
    }
}
