using System.Globalization;

namespace Backprop.Cli.Explain;

/// <summary>One of the classic backprop walk-throughs, printed step by step with its numbers.</summary>
public abstract class WorkedExample
{
    /// <summary>Name used on the command line.</summary>
    public abstract string Name { get; }

    /// <summary>One-line description for the list.</summary>
    public abstract string Summary { get; }

    /// <summary>Runs the example, writing every step to <paramref name="output"/>.</summary>
    public abstract void Run(TextWriter output);

    /// <summary>All examples, in teaching order.</summary>
    public static IReadOnlyList<WorkedExample> All { get; } =
    [
        new ChainRuleExample(),
        new CitiesExample(),
        new TwoTanhExample(),
        new BackwardNetworkExample(),
        new LinearLayerExample(),
        new NumericalVsBackpropExample(),
        new AttentionExample(),
        new AdversarialExample(),
        new DreamExample(),
        new SensitivityExample(),
        new LandscapeExample(),
        new RnnGradientsExample(),
    ];

    /// <summary>Formats a number with the given decimals, invariant culture.</summary>
    protected static string F(double v, int decimals = 3) => v.ToString("F" + decimals, CultureInfo.InvariantCulture);

    /// <summary>Like <see cref="F"/>, but negative numbers in parentheses, for use inside formulas.</summary>
    protected static string P(double v, int decimals = 3) => v < 0 ? $"({F(v, decimals)})" : F(v, decimals);

    /// <summary>Formats a vector as (a, b, c).</summary>
    protected static string V(IEnumerable<double> v, int decimals = 3) => "(" + string.Join(", ", v.Select(x => F(x, decimals))) + ")";
}
